package coordinator

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// realInstall returns the DMTCP on this machine or skips with one line saying why.
func realInstall(t *testing.T) Install {
	inst, err := Find(os.Getenv("DMTCP_PREFIX"), os.Getenv("PATH"))
	if err != nil {
		t.Skipf("SKIP: needs real DMTCP: %v", err)
	}
	return inst
}

func TestRealCoordinatorLifecycle(t *testing.T) {
	inst := realInstall(t)
	v, err := inst.Version()
	require.NoError(t, err)
	assert.Regexp(t, `^\d+\.\d+`, v)

	dir := t.TempDir()
	for _, d := range []string{"run", "ckpt", "tmp"} {
		require.NoError(t, os.Mkdir(filepath.Join(dir, d), 0o700))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Start(ctx, Options{Install: inst, RunDir: filepath.Join(dir, "run"),
		CkptDir: filepath.Join(dir, "ckpt"), TmpDir: filepath.Join(dir, "tmp"), Host: "127.0.0.1"})
	require.NoError(t, err)
	assert.Greater(t, c.Port, 0)

	st, err := c.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, st.NumPeers)

	// Two coordinators on one node never clash: each gets its own free port.
	other, err := Start(ctx, Options{Install: inst, RunDir: filepath.Join(dir, "ckpt"),
		CkptDir: filepath.Join(dir, "ckpt"), TmpDir: filepath.Join(dir, "tmp"), Host: "127.0.0.1"})
	require.NoError(t, err)
	assert.NotEqual(t, c.Port, other.Port)
	require.NoError(t, other.Quit(ctx))

	require.NoError(t, c.Quit(ctx))
	select {
	case <-c.Done():
	default:
		t.Fatal("coordinator still running after Quit")
	}
	assert.ErrorIs(t, c.Quit(ctx), ErrGone)
}
