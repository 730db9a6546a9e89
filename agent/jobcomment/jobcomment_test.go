package jobcomment

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFormatAndParse(t *testing.T) {
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		s    State
		want string
	}{
		{"batch", State{Step: "batch", Generation: 5, At: at, Bytes: 48 << 20}, "slurm-dmtcp: gen=5 at=2026-12-07T12:00:00Z size=48MiB"},
		{"step", State{Step: "0", Generation: 2, At: at, Bytes: 3250585}, "slurm-dmtcp: step=0 gen=2 at=2026-12-07T12:00:00Z size=3.1MiB"},
		{"requeue", State{Generation: 7, At: at, Bytes: 1 << 30, Requeue: "continue"}, "slurm-dmtcp: gen=7 at=2026-12-07T12:00:00Z size=1.0GiB requeue=continue"},
		{"none yet", State{Requeue: "placement"}, "slurm-dmtcp: gen=none requeue=placement"},
		{"local time shown as UTC", State{Generation: 1, At: at.In(time.FixedZone("x", 3600)), Bytes: 512}, "slurm-dmtcp: gen=1 at=2026-12-07T12:00:00Z size=512B"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Format(tc.s)
			assert.Equal(t, tc.want, got)
			back, ok := Parse(got)
			require.True(t, ok)
			assert.Equal(t, tc.s.Generation, back.Generation)
			assert.Equal(t, tc.s.Requeue, back.Requeue)
			assert.True(t, back.At.Equal(tc.s.At), "at %s", back.At)
			assert.InEpsilon(t, float64(tc.s.Bytes)+1, float64(back.Bytes)+1, 0.05)
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for _, c := range []string{"", "my own note", "slurm-dmtcp: gen=x", "slurm-dmtcp: at=yesterday", "slurm-dmtcp: size=12", "slurm-dmtcp: junk"} {
		_, ok := Parse(c)
		assert.False(t, ok, c)
	}
	s, ok := Parse("slurm-dmtcp: gen=3 newfield=1")
	assert.True(t, ok, "a later release's field is passed over")
	assert.Equal(t, 3, s.Generation)
}

func TestOurs(t *testing.T) {
	for c, want := range map[string]bool{"": true, "(null)": true, "  ": true, "slurm-dmtcp: gen=1": true,
		"run 4 of my sweep": false, "see slurm-dmtcp: later": false} {
		assert.Equal(t, want, Ours(c), "%q", c)
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 1023: "1023B", 1024: "1.0KiB", 48 << 20: "48MiB", 10 << 30: "10GiB", 5 << 40: "5.0TiB"} {
		assert.Equal(t, want, Size(n))
	}
	_, err := ParseSize("12")
	assert.Error(t, err)
	_, err = ParseSize("-1MiB")
	assert.Error(t, err)
}

// fakeSlurm is squeue and scontrol of one job.
type fakeSlurm struct {
	mu      sync.Mutex
	comment string
	updates []string
	failSq  error
	block   chan struct{}
}

func (f *fakeSlurm) squeue(ctx context.Context, args ...string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSq != nil {
		return nil, f.failSq
	}
	return []byte(f.comment + "\n"), nil
}

func (f *fakeSlurm) scontrol(ctx context.Context, args ...string) ([]byte, error) {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, strings.Join(args, " "))
	f.comment = strings.TrimPrefix(args[len(args)-1], "Comment=")
	return nil, nil
}

func newPub(f *fakeSlurm) (*Publisher, *test.Hook) {
	l, hook := test.NewNullLogger()
	return &Publisher{JobID: "42", Squeue: f.squeue, Scontrol: f.scontrol, Timeout: 200 * time.Millisecond, Log: logrus.NewEntry(l)}, hook
}

func TestPublisher(t *testing.T) {
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		comment  string
		failSq   error
		want     string // the Comment afterwards
		updates  int
		logLevel logrus.Level
		logMsg   string
	}{
		{"empty comment is set", "", nil, "slurm-dmtcp: gen=2 at=2026-12-07T12:00:00Z size=1.0MiB", 1, 0, ""},
		{"ours is replaced", "slurm-dmtcp: gen=1 at=2026-12-07T11:00:00Z size=1.0MiB", nil, "slurm-dmtcp: gen=2 at=2026-12-07T12:00:00Z size=1.0MiB", 1, 0, ""},
		{"the user's own is kept", "my sweep, part 3", nil, "my sweep, part 3", 0, logrus.InfoLevel, "the user's own"},
		{"squeue fails: warning, nothing written", "", errors.New("slurmctld down"), "", 0, logrus.WarnLevel, "cannot read it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSlurm{comment: tc.comment, failSq: tc.failSq}
			p, hook := newPub(f)
			p.Set(State{Step: "batch", Generation: 2, At: at, Bytes: 1 << 20})
			p.Flush(2 * time.Second)
			f.mu.Lock()
			defer f.mu.Unlock()
			assert.Equal(t, tc.want, f.comment)
			assert.Len(t, f.updates, tc.updates)
			if tc.logMsg != "" {
				require.NotNil(t, hook.LastEntry())
				assert.Equal(t, tc.logLevel, hook.LastEntry().Level)
				assert.Contains(t, hook.LastEntry().Message, tc.logMsg)
			}
		})
	}
}

// A hung scontrol never holds up Set, is cut at the time-out, and the newest State wins.
func TestPublisherNeverBlocks(t *testing.T) {
	f := &fakeSlurm{block: make(chan struct{})}
	p, hook := newPub(f)
	start := time.Now()
	for g := 1; g <= 5; g++ {
		p.Set(State{Generation: g, At: time.Unix(int64(g), 0), Bytes: 1})
	}
	assert.Less(t, time.Since(start), 50*time.Millisecond, "Set returns at once")
	p.Flush(2 * time.Second)
	assert.Less(t, time.Since(start), 1500*time.Millisecond, "each call is bounded by the time-out")
	require.NotNil(t, hook.LastEntry())
	assert.Contains(t, hook.LastEntry().Message, "not updated")
	close(f.block)
	p.Set(State{Generation: 6, At: time.Unix(6, 0), Bytes: 1})
	p.Flush(2 * time.Second)
	f.mu.Lock()
	defer f.mu.Unlock()
	assert.Contains(t, f.comment, "gen=6")
	var nilP *Publisher
	nilP.Set(State{})
	nilP.Flush(time.Millisecond)
}
