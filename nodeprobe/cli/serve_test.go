package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/cache"
)

// fakeSystemd records notify states and journal entries, and hands the
// test the channel serve listens on for signals.
type fakeSystemd struct {
	mu      sync.Mutex
	states  []string
	journal []string
	sigs    chan chan<- os.Signal
}

func (f *fakeSystemd) notify(state string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states = append(f.states, firstLineOf(state))
	return true, nil
}

func (f *fakeSystemd) count(state string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, s := range f.states {
		if s == state {
			n++
		}
	}
	return n
}

func (f *fakeSystemd) send(msg string, p journal.Priority, vars map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.journal = append(f.journal, msg+" class="+vars["CLASS"]+" reason="+vars["REASON"]+" id="+vars["SYSLOG_IDENTIFIER"])
	return nil
}

func (f *fakeSystemd) journalText() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.journal, "\n")
}

func TestServe(t *testing.T) {
	tests := []struct {
		name     string
		stopWith func(t *testing.T, sig chan<- os.Signal, cancel context.CancelFunc)
	}{
		{"SIGTERM", func(t *testing.T, sig chan<- os.Signal, _ context.CancelFunc) { sig <- syscall.SIGTERM }},
		{"SIGINT", func(t *testing.T, sig chan<- os.Signal, _ context.CancelFunc) { sig <- syscall.SIGINT }},
		{"context", func(t *testing.T, _ chan<- os.Signal, cancel context.CancelFunc) { cancel() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "nodefacts.db")
			sd := &fakeSystemd{sigs: make(chan chan<- os.Signal, 1)}
			var stdout, stderr bytes.Buffer
			e := testEnv(&stdout, &stderr)
			e.now = time.Now
			e.sdNotify = sd.notify
			e.watchdog = func() (time.Duration, error) { return 20 * time.Millisecond, nil }
			e.journal = sd.send
			var signalled []os.Signal
			e.notifySignals = func(c chan<- os.Signal, sig ...os.Signal) func() {
				signalled = sig
				sd.sigs <- c
				return func() {}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, []string{"serve", "--every", "1s", "--db", db, "--root", intelRoot, "--dmtcp-prefix", dmtcp300}, e)
			}()
			sig := <-sd.sigs
			assert.ElementsMatch(t, []os.Signal{syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT}, signalled)
			require.Eventually(t, func() bool { return sd.count("READY=1") == 1 }, 5*time.Second, 5*time.Millisecond)
			require.Eventually(t, func() bool { return sd.count("WATCHDOG=1") >= 2 }, 5*time.Second, 5*time.Millisecond)

			sig <- syscall.SIGHUP
			require.Eventually(t, func() bool { return sd.count("READY=1") == 2 }, 5*time.Second, 5*time.Millisecond)
			assert.Equal(t, 1, sd.count("RELOADING=1"))

			tt.stopWith(t, sig, cancel)
			select {
			case code := <-done:
				assert.Equal(t, ExitOK, code, stderr.String())
			case <-time.After(5 * time.Second):
				t.Fatal("serve did not stop")
			}
			assert.Equal(t, 1, sd.count("STOPPING=1"))
			assert.Empty(t, stderr.String(), "with journald, logs go only to the journal")
			text := sd.journalText()
			assert.Contains(t, text, "node facts changed class="+intelClass+" reason=start id=slurm-dmtcp-nodeprobe")
			assert.Contains(t, text, "node facts unchanged class="+intelClass+" reason=SIGHUP")
			assert.Contains(t, text, "stopping")

			c, err := cache.Open(db)
			require.NoError(t, err)
			defer c.Close()
			latest, err := c.Latest()
			require.NoError(t, err)
			assert.GreaterOrEqual(t, latest.Probes, int64(2))
		})
	}
}

func TestServeTimerAndStderrLogs(t *testing.T) {
	db := filepath.Join(t.TempDir(), "nodefacts.db")
	var stdout, stderr bytes.Buffer
	var mu sync.Mutex
	e := testEnv(&stdout, &stderr)
	e.stderr = &lockedWriter{mu: &mu, w: &stderr}
	e.now = time.Now
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--every", "1s", "--db", db, "--root", intelRoot, "--dmtcp-prefix", dmtcp300}, e)
	}()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(stderr.String(), "reason=timer")
	}, 5*time.Second, 20*time.Millisecond)
	cancel()
	assert.Equal(t, ExitOK, <-done)
	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, stderr.String(), "class="+intelClass)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestServeCannotOpenCache(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	code, _, stderr := runTest(t, "serve", "--db", filepath.Join(file, "x.db"), "--root", intelRoot)
	assert.Equal(t, ExitError, code)
	assert.Contains(t, stderr, "cannot open the facts cache")
	assert.Contains(t, stderr, file)
}

func TestJournalField(t *testing.T) {
	tests := []struct{ in, want string }{
		{"class", "CLASS"},
		{"vdso_size", "VDSO_SIZE"},
		{"moved-to", "MOVED_TO"},
		{"_private", "PRIVATE"},
		{"9lives", "LIVES"},
		{"", ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, journalField(tt.in), tt.in)
	}
}

func TestJournalPriority(t *testing.T) {
	tests := []struct {
		level logrus.Level
		want  journal.Priority
	}{
		{logrus.ErrorLevel, journal.PriErr},
		{logrus.WarnLevel, journal.PriWarning},
		{logrus.InfoLevel, journal.PriInfo},
		{logrus.DebugLevel, journal.PriDebug},
		{logrus.PanicLevel, journal.PriEmerg},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, journalPriority(tt.level), tt.level.String())
	}
}
