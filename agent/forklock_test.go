package agent

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The agent takes the fork lock only when no fork holds it, waits a bounded time for one
// that does, and lets it go for the forks after the checkpoint.
func TestForkLock(t *testing.T) {
	dir := t.TempDir()
	l, err := openForkLock(dir)
	require.NoError(t, err)
	defer l.close()
	st, err := os.Stat(filepath.Join(dir, ForkLockFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	fork, err := os.Open(filepath.Join(dir, ForkLockFile)) // as the plugin's fork() does
	require.NoError(t, err)
	defer fork.Close()
	require.NoError(t, syscall.Flock(int(fork.Fd()), syscall.LOCK_SH))
	start := time.Now()
	held, release := l.hold(context.Background(), 50*time.Millisecond)
	assert.False(t, held, "a fork in flight holds it")
	assert.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
	release()

	go func() {
		time.Sleep(20 * time.Millisecond)
		_ = syscall.Flock(int(fork.Fd()), syscall.LOCK_UN)
	}()
	held, release = l.hold(context.Background(), time.Second)
	assert.True(t, held, "taken once the fork is done")
	assert.Error(t, syscall.Flock(int(fork.Fd()), syscall.LOCK_SH|syscall.LOCK_NB), "a fork waits while the agent holds it")
	release()
	assert.NoError(t, syscall.Flock(int(fork.Fd()), syscall.LOCK_SH|syscall.LOCK_NB), "and goes on after")

	var none *forkLock
	held, release = none.hold(context.Background(), time.Second)
	assert.False(t, held)
	release()
}

// The agent settles the computation with the fork lock held: no process can start between
// the settle and the checkpoint, and a fork waits until the checkpoint is over.
func TestCheckpointSettlesWithForksHeld(t *testing.T) {
	a, coord, _ := newTestAgent(t, Config{JobID: "7", Step: "batch"}, &fakeJob{})
	l, err := openForkLock(a.Layout.RunDir)
	require.NoError(t, err)
	defer l.close()
	a.forks = l
	fork, err := os.Open(filepath.Join(a.Layout.RunDir, ForkLockFile)) // as the plugin's fork() does
	require.NoError(t, err)
	defer fork.Close()
	var forkDuringSettle error
	coord.settled = func() { forkDuringSettle = syscall.Flock(int(fork.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) }
	_, err = a.Checkpoint(context.Background(), "periodic")
	require.NoError(t, err)
	assert.ErrorIs(t, forkDuringSettle, syscall.EWOULDBLOCK, "a fork during the settle waits")
	assert.NoError(t, syscall.Flock(int(fork.Fd()), syscall.LOCK_SH|syscall.LOCK_NB), "forks go on after the checkpoint")
}
