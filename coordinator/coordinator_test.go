package coordinator

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// A process that joins while a checkpoint-then-exit is being taken is not part of it and
// would stay suspended for good: it is ended once the checkpoint is complete, and every
// image of the checkpoint is complete.
func TestRealCheckpointAndKillEndsLateJoiners(t *testing.T) {
	inst := realInstall(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("SKIP: needs python3 for a program whose checkpoint takes a while")
	}
	dir := t.TempDir()
	for _, d := range []string{"run", "ckpt", "tmp"} {
		require.NoError(t, os.Mkdir(filepath.Join(dir, d), 0o700))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := Start(ctx, Options{Install: inst, RunDir: filepath.Join(dir, "run"),
		CkptDir: filepath.Join(dir, "ckpt"), TmpDir: filepath.Join(dir, "tmp"), Host: "127.0.0.1"})
	require.NoError(t, err)
	defer func() { _ = c.Quit(context.Background()) }()
	launch := func(args ...string) chan error {
		cmd := exec.Command(inst.Launch, append([]string{"-j", "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port),
			"--ckptdir", filepath.Join(dir, "ckpt"), "--tmpdir", filepath.Join(dir, "tmp"), "--no-gzip"}, args...)...)
		require.NoError(t, cmd.Start())
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		return waited
	}
	// 300 MB of memory: the checkpoint takes long enough for another process to join in it.
	big := launch("python3", "-c", "import os, time; b = os.urandom(300 << 20); open('"+dir+"/ready', 'w').close(); time.sleep(600)")
	require.Eventually(t, func() bool {
		_, err := os.Stat(dir + "/ready")
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "the program started")

	done := make(chan error, 1)
	go func() {
		kctx, kcancel := context.WithTimeout(ctx, 20*time.Second)
		defer kcancel()
		done <- c.CheckpointAndKill(kctx)
	}()
	time.Sleep(150 * time.Millisecond) // the checkpoint is under way
	late := launch("sleep", "600")
	require.NoError(t, <-done)
	st, err := c.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, st.NumPeers)
	for name, w := range map[string]chan error{"the program": big, "the late joiner": late} {
		select {
		case <-w:
		case <-time.After(10 * time.Second):
			t.Errorf("%s outlived the checkpoint", name)
		}
	}
	images, _ := filepath.Glob(filepath.Join(dir, "ckpt", "ckpt_python3*.dmtcp"))
	assert.Len(t, images, 1, "the program's image")
	temps, _ := filepath.Glob(filepath.Join(dir, "ckpt", "*.temp"))
	assert.Empty(t, temps, "half-written images")
}
