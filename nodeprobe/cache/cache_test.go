package cache

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/facts"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func sample(kernel string, vdso int64) facts.Facts {
	return facts.Facts{
		SchemaVersion: facts.SchemaVersion, Hostname: "cn01", Arch: "x86_64",
		CPUVendor: "GenuineIntel", X86Level: 3, ISAFeatures: []string{"avx", "avx2", "sse2"},
		FeatureFamilies: []string{"avx", "avx2"}, KernelRelease: kernel, VDSOSize: vdso,
		VVARSize: 16384, PageSize: 4096, GlibcVersion: "2.36", DMTCPVersion: "3.0.0",
	}
}

func openTemp(t *testing.T, opts ...Option) (*Cache, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", "nodefacts.db")
	c, err := Open(path, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c, path
}

func TestOpenCreatesFolderAndFile(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	c, path := openTemp(t)
	st, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), st.Mode().Perm())
	st, err = os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())

	v, err := c.Version()
	require.NoError(t, err)
	assert.Equal(t, LatestSchemaVersion(), v)
	var mode string
	require.NoError(t, c.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode))
	assert.Equal(t, "wal", mode)
	var busy int
	require.NoError(t, c.db.QueryRow(`PRAGMA busy_timeout`).Scan(&busy))
	assert.Equal(t, int(DefaultBusyTimeout.Milliseconds()), busy)
}

func TestOpenBadPaths(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	tests := []struct {
		name, path, want string
	}{
		{"empty", "", "must be non-empty"},
		{"query character", "/tmp/a?b.db", "free of '?'"},
		{"parent is a file", filepath.Join(file, "x.db"), file},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(tt.path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestMigrationsAreOrderedAndResumable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	// A database left at schema version 1 by an older probe.
	db, err := sql.Open("sqlite3", path)
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);` + migrations[0])
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO facts (class, digest, facts_json, first_seen, last_seen) VALUES ('c-0000000000', 'd', '{"arch":"x86_64"}', ?, ?)`, formatTime(t0), formatTime(t0))
	require.NoError(t, err)
	require.NoError(t, db.Close())

	c, err := Open(path)
	require.NoError(t, err)
	defer c.Close()
	v, err := c.Version()
	require.NoError(t, err)
	assert.Equal(t, 2, v)
	var idx int
	require.NoError(t, c.db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type='index' AND name='facts_class'`).Scan(&idx))
	assert.Equal(t, 1, idx)
	e, err := c.Latest()
	require.NoError(t, err)
	assert.Equal(t, "c-0000000000", e.Class, "old rows survive migrations")

	// A database from a newer probe is refused, not downgraded.
	_, err = c.db.Exec(`UPDATE schema_version SET version = 99`)
	require.NoError(t, err)
	_, err = Open(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "schema version 99 is newer")
	assert.Contains(t, err.Error(), path)
}

func TestRecordHistory(t *testing.T) {
	a, b := sample("6.1.0-13", 8192), sample("6.1.0-18", 12288)
	steps := []struct {
		facts   facts.Facts
		at      time.Duration
		changed bool
	}{
		{a, 0, true},
		{a, time.Minute, false},
		{withTime(a, t0.Add(2*time.Minute)), 2 * time.Minute, false}, // collection time alone is no change
		{b, 10 * time.Minute, true},
		{b, 20 * time.Minute, false},
		{a, 30 * time.Minute, true}, // going back is a change too
	}
	c, _ := openTemp(t)
	_, err := c.Latest()
	require.ErrorIs(t, err, ErrEmpty)
	for i, s := range steps {
		changed, err := c.Record(s.facts, t0.Add(s.at))
		require.NoError(t, err)
		assert.Equal(t, s.changed, changed, "step %d", i)
	}
	hist, err := c.History(0)
	require.NoError(t, err)
	require.Len(t, hist, 3)
	tests := []struct {
		kernel       string
		first, last  time.Duration
		probes       int64
		wantClassOfB bool
	}{
		{"6.1.0-13", 30 * time.Minute, 30 * time.Minute, 1, false},
		{"6.1.0-18", 10 * time.Minute, 20 * time.Minute, 2, true},
		{"6.1.0-13", 0, 2 * time.Minute, 3, false},
	}
	for i, tt := range tests {
		e := hist[i]
		assert.Equal(t, tt.kernel, e.Facts.KernelRelease, "row %d", i)
		assert.Equal(t, t0.Add(tt.first), e.FirstSeen, "row %d", i)
		assert.Equal(t, t0.Add(tt.last), e.LastSeen, "row %d", i)
		assert.Equal(t, tt.probes, e.Probes, "row %d", i)
		assert.Equal(t, facts.Class(e.Facts), e.Class)
	}
	assert.Greater(t, hist[0].ID, hist[1].ID)

	latest, err := c.Latest()
	require.NoError(t, err)
	assert.Equal(t, hist[0], latest)
	two, err := c.History(2)
	require.NoError(t, err)
	assert.Equal(t, hist[:2], two)
}

func withTime(f facts.Facts, at time.Time) facts.Facts {
	f.CollectedAt = at
	return f
}

func TestLockedDatabase(t *testing.T) {
	c, path := openTemp(t, WithBusyTimeout(50*time.Millisecond))
	other, err := sql.Open("sqlite3", path)
	require.NoError(t, err)
	defer other.Close()
	conn, err := other.Conn(t.Context())
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(t.Context(), `BEGIN EXCLUSIVE`)
	require.NoError(t, err)

	_, err = c.Record(sample("6.1.0", 8192), t0)
	require.ErrorIs(t, err, ErrLocked)
	assert.Contains(t, err.Error(), path)

	// Readers are not blocked by the writer in WAL mode.
	_, err = c.History(5)
	require.NoError(t, err)

	_, err = conn.ExecContext(t.Context(), `ROLLBACK`)
	require.NoError(t, err)
	changed, err := c.Record(sample("6.1.0", 8192), t0)
	require.NoError(t, err)
	assert.True(t, changed)
}

// corruptions damage a closed, valid database file in different ways.
var corruptions = []struct {
	name   string
	damage func(t *testing.T, path string)
}{
	{"header overwritten", func(t *testing.T, path string) {
		fh, err := os.OpenFile(path, os.O_WRONLY, 0)
		require.NoError(t, err)
		_, err = fh.WriteAt([]byte(strings.Repeat("garbage!", 12)), 0)
		require.NoError(t, err)
		require.NoError(t, fh.Close())
	}},
	{"not a database at all", func(t *testing.T, path string) {
		require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("this is a text file, not SQLite\n", 200)), 0o644))
	}},
	{"table page overwritten", func(t *testing.T, path string) {
		st, err := os.Stat(path)
		require.NoError(t, err)
		require.Greater(t, st.Size(), int64(2*4096))
		fh, err := os.OpenFile(path, os.O_WRONLY, 0)
		require.NoError(t, err)
		_, err = fh.WriteAt([]byte(strings.Repeat("\xff\x00\x13", 1300)), 4096)
		require.NoError(t, err)
		require.NoError(t, fh.Close())
	}},
}

func makeDamaged(t *testing.T, damage func(*testing.T, string)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nodefacts.db")
	c, err := Open(path)
	require.NoError(t, err)
	for i := range 20 {
		_, err := c.Record(sample(fmt.Sprintf("6.1.%d", i), 8192), t0)
		require.NoError(t, err)
	}
	require.NoError(t, c.Close())
	damage(t, path)
	return path
}

func TestCorruptFile(t *testing.T) {
	for _, tt := range corruptions {
		t.Run(tt.name, func(t *testing.T) {
			path := makeDamaged(t, tt.damage)
			_, err := Open(path)
			require.ErrorIs(t, err, ErrCorrupt)
			assert.Contains(t, err.Error(), path)
		})
	}
}

func TestOpenOrRecover(t *testing.T) {
	now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tt := range corruptions {
		t.Run(tt.name, func(t *testing.T) {
			path := makeDamaged(t, tt.damage)
			damaged, err := os.ReadFile(path)
			require.NoError(t, err)

			c, movedTo, err := OpenOrRecover(path, now)
			require.NoError(t, err)
			defer c.Close()
			assert.Equal(t, path+".corrupt-20250304T050607Z", movedTo)
			kept, err := os.ReadFile(movedTo)
			require.NoError(t, err)
			assert.Equal(t, damaged, kept, "the corrupt file is kept as it was")

			_, err = c.Latest()
			require.ErrorIs(t, err, ErrEmpty, "a fresh database")
			changed, err := c.Record(sample("6.1.0", 8192), now)
			require.NoError(t, err)
			assert.True(t, changed)
		})
	}
	t.Run("healthy file is left alone", func(t *testing.T) {
		c, path := openTemp(t)
		_, err := c.Record(sample("6.1.0", 8192), t0)
		require.NoError(t, err)
		c2, movedTo, err := OpenOrRecover(path, now)
		require.NoError(t, err)
		defer c2.Close()
		assert.Empty(t, movedTo)
		_, err = c2.Latest()
		require.NoError(t, err)
	})
	t.Run("second recovery at the same second does not overwrite the first", func(t *testing.T) {
		path := makeDamaged(t, corruptions[0].damage)
		c, first, err := OpenOrRecover(path, now)
		require.NoError(t, err)
		require.NoError(t, c.Close())
		corruptions[1].damage(t, path)
		c, second, err := OpenOrRecover(path, now)
		require.NoError(t, err)
		defer c.Close()
		assert.NotEqual(t, first, second)
		assert.FileExists(t, first)
		assert.FileExists(t, second)
	})
}

func TestConcurrentWriterAndReaders(t *testing.T) {
	writer, path := openTemp(t)
	const writes = 60
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	stop := make(chan struct{})

	// Readers with their own Cache, as other processes would have.
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Open(path)
			if err != nil {
				errs <- fmt.Errorf("reader %d open: %w", r, err)
				return
			}
			defer c.Close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.Latest(); err != nil && !errors.Is(err, ErrEmpty) {
					errs <- fmt.Errorf("reader %d latest: %w", r, err)
					return
				}
				if _, err := c.History(10); err != nil {
					errs <- fmt.Errorf("reader %d history: %w", r, err)
					return
				}
			}
		}()
	}
	// A plain second *sql.DB on the same file.
	raw, err := sql.Open("sqlite3", path+"?_busy_timeout=5000")
	require.NoError(t, err)
	defer raw.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		last := 0
		for {
			select {
			case <-stop:
				return
			default:
			}
			var n int
			if err := raw.QueryRow(`SELECT count(*) FROM facts`).Scan(&n); err != nil {
				errs <- fmt.Errorf("raw reader: %w", err)
				return
			}
			if n < last {
				errs <- fmt.Errorf("raw reader saw the row count go down from %d to %d", last, n)
				return
			}
			last = n
		}
	}()

	for i := range writes {
		// Every third probe finds the same facts again.
		_, err := writer.Record(sample(fmt.Sprintf("6.1.%d", i/3), 8192), t0.Add(time.Duration(i)*time.Second))
		require.NoError(t, err)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	hist, err := writer.History(0)
	require.NoError(t, err)
	assert.Len(t, hist, writes/3)
	for _, e := range hist {
		assert.Equal(t, int64(3), e.Probes)
	}
}

// TestReaderProcess reads the database from another process while this one
// writes: the helper re-runs the test binary as a reader.
func TestReaderProcess(t *testing.T) {
	if os.Getenv("NODEPROBE_CACHE_READER") != "" {
		return
	}
	writer, path := openTemp(t)
	_, err := writer.Record(sample("6.1.0", 8192), t0)
	require.NoError(t, err)

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperReader$", "-test.count=1")
	cmd.Env = append(os.Environ(), "NODEPROBE_CACHE_READER="+path)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	for i := range 40 {
		_, err := writer.Record(sample(fmt.Sprintf("6.1.%d", i), 8192), t0)
		require.NoError(t, err)
		time.Sleep(2 * time.Millisecond)
	}
	require.NoError(t, cmd.Wait(), out.String())
	assert.Contains(t, out.String(), "PASS")
}

func TestHelperReader(t *testing.T) {
	path := os.Getenv("NODEPROBE_CACHE_READER")
	if path == "" {
		t.Skip("run by TestReaderProcess")
	}
	c, err := Open(path)
	require.NoError(t, err)
	defer c.Close()
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		e, err := c.Latest()
		require.NoError(t, err)
		require.Equal(t, "x86_64", e.Facts.Arch)
	}
}
