package cache

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenReadOnly(t *testing.T) {
	w, path := openTemp(t)
	_, err := w.Record(sample("6.1.0", 8192), t0)
	require.NoError(t, err)

	// While the writer has it open (its -wal and -shm exist).
	r, err := OpenReadOnly(path)
	require.NoError(t, err)
	e, err := r.Latest()
	require.NoError(t, err)
	assert.Equal(t, "6.1.0", e.Facts.KernelRelease)
	_, err = r.Record(sample("6.2.0", 8192), t0)
	require.Error(t, err, "a read-only cache refuses writes")
	require.NoError(t, r.Close())

	// With no writer left (the -wal file is gone): the immutable path.
	require.NoError(t, w.Close())
	_, err = os.Stat(path + "-wal")
	require.True(t, errors.Is(err, os.ErrNotExist), "the last close removes the WAL file")
	r, err = OpenReadOnly(path)
	require.NoError(t, err)
	e, err = r.Latest()
	require.NoError(t, err)
	assert.Equal(t, "6.1.0", e.Facts.KernelRelease)
	require.NoError(t, r.Close())
}

// A reader that may not write the folder (the agent as the job's user; the probe writes as
// root) reads the cache with and without a writer holding it open.
func TestReadOnlyAsAnotherUser(t *testing.T) {
	if os.Getenv("NODEPROBE_RO_READER") != "" {
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIP: needs root to run the reader as user nobody")
	}
	dir, err := os.MkdirTemp("", "nodeprobe-ro-")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "cache.test")
	self, err := os.ReadFile(os.Args[0])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, self, 0o755))
	path := filepath.Join(dir, "state", "nodefacts.db")
	w, err := Open(path)
	require.NoError(t, err)
	_, err = w.Record(sample("6.1.0", 8192), t0)
	require.NoError(t, err)

	read := func() string {
		cmd := exec.Command(bin, "-test.run=^TestHelperReadOnlyReader$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "NODEPROBE_RO_READER="+path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	assert.Contains(t, read(), "kernel 6.1.0", "with the writer open")
	require.NoError(t, w.Close())
	_, err = os.Stat(path + "-wal")
	require.True(t, errors.Is(err, os.ErrNotExist))
	assert.Contains(t, read(), "kernel 6.1.0", "with no writer")
	_, err = os.Stat(path + "-wal")
	assert.True(t, errors.Is(err, os.ErrNotExist), "the reader created nothing")
}

func TestHelperReadOnlyReader(t *testing.T) {
	path := os.Getenv("NODEPROBE_RO_READER")
	if path == "" {
		t.Skip("SKIP: run by TestReadOnlyAsAnotherUser")
	}
	require.NotEqual(t, 0, os.Geteuid())
	c, err := OpenReadOnly(path)
	require.NoError(t, err)
	defer c.Close()
	e, err := c.Latest()
	require.NoError(t, err)
	t.Logf("kernel %s", e.Facts.KernelRelease)
}

func TestOpenReadOnlyErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.db")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	garbage := filepath.Join(dir, "garbage.db")
	require.NoError(t, os.WriteFile(garbage, []byte("this is not an SQLite database, not at all, no"), 0o644))
	_, newer := openTemp(t)
	w, err := Open(newer)
	require.NoError(t, err)
	_, err = w.db.Exec(`UPDATE schema_version SET version = 99`)
	require.NoError(t, err)
	require.NoError(t, w.Close())

	for _, tc := range []struct {
		name, path string
		is         error
		msg        string
	}{
		{"missing", filepath.Join(dir, "none.db"), os.ErrNotExist, "none.db"},
		{"folder", dir, nil, "not a regular file"},
		{"bad path", dir + "/x?mode=rwc", nil, "free of '?' and '#'"},
		{"empty file", empty, ErrEmpty, "empty.db"},
		{"not a database", garbage, ErrCorrupt, "garbage.db"},
		{"newer schema", newer, nil, "schema version 99 is newer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := OpenReadOnly(tc.path)
			require.Error(t, err)
			assert.Nil(t, c)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
	_, err = os.Stat(filepath.Join(dir, "none.db"))
	assert.True(t, errors.Is(err, os.ErrNotExist), "OpenReadOnly never creates the file")
}

// Readers opened read-only see whole fact sets while a writer records new ones.
func TestReadOnlyReadersDuringWrites(t *testing.T) {
	w, path := openTemp(t)
	_, err := w.Record(sample("6.1.0", 8192), t0)
	require.NoError(t, err)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := "6.1.0"
			if i%2 == 1 {
				k = "6.2.0"
			}
			if _, err := w.Record(sample(k, 8192), t0.Add(time.Duration(i)*time.Second)); err != nil {
				t.Errorf("record: %v", err)
				return
			}
		}
	}()
	for i := 0; i < 50; i++ {
		r, err := OpenReadOnly(path)
		require.NoError(t, err)
		e, err := r.Latest()
		require.NoError(t, err)
		assert.Contains(t, []string{"6.1.0", "6.2.0"}, e.Facts.KernelRelease)
		require.NoError(t, r.Close())
	}
	close(stop)
	wg.Wait()
}
