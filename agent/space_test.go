package agent

import (
	"context"
	"fmt"

	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeProc writes stat and statm files for a process tree: pid -> (ppid, rss pages).
func fakeProc(t *testing.T, procs map[int][2]int) string {
	dir := t.TempDir()
	for pid, p := range procs {
		d := filepath.Join(dir, fmt.Sprint(pid))
		require.NoError(t, os.Mkdir(d, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(d, "stat"), []byte(fmt.Sprintf("%d (a (b) c) S %d 1 1 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 100 1000 10", pid, p[0])), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(d, "statm"), []byte(fmt.Sprintf("1000 %d 10 1 0 5 0", p[1])), 0o644))
	}
	require.NoError(t, os.Mkdir(filepath.Join(dir, "self"), 0o755))
	return dir
}

func TestTreeRSS(t *testing.T) {
	page := int64(os.Getpagesize())
	// 10 slurmstepd; 11 agent with 12 coordinator; 20 task with 21 and 22 below it; 30 elsewhere.
	proc := fakeProc(t, map[int][2]int{10: {1, 5}, 11: {10, 100}, 12: {11, 100}, 20: {10, 7}, 21: {20, 3}, 22: {21, 2}, 30: {1, 1000}})
	n, err := treeRSS(proc, 10, 11)
	require.NoError(t, err)
	assert.Equal(t, 12*page, n, "tasks and their children, not the agent's subtree nor others")
}

func TestSpaceFits(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sp       Space
		compress bool
		want     bool
	}{
		{"room", Space{Need: 100 << 20, Free: 200 << 20}, false, true},
		{"no room", Space{Need: 100 << 20, Free: 105 << 20}, false, false},
		{"compressed images may fit", Space{Need: 100 << 20, Free: 10 << 20}, true, true},
		{"full", Space{Need: 100 << 20, Free: 0}, true, false},
		{"images bigger than the memory", Space{Need: 10 << 20, Last: 30 << 20, Free: 20 << 20}, false, false},
		{"memory bigger than the images", Space{Need: 30 << 20, Last: 10 << 20, Free: 20 << 20}, false, false},
		{"room for both", Space{Need: 10 << 20, Last: 30 << 20, Free: 40 << 20}, false, true},
		{"compressed: the last one's size", Space{Need: 100 << 20, Last: 30 << 20, Free: 20 << 20}, true, false},
		{"compressed: room for the last one's size", Space{Need: 100 << 20, Last: 10 << 20, Free: 20 << 20}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, tc.sp.fits(tc.compress)) })
	}
}

// A checkpoint that cannot fit is not attempted: the application keeps running, earlier
// generations stay, and the user is told why.
func TestCheckpointSkippedWhenTheDiskCannotHoldIt(t *testing.T) {
	a, coord, progress := newTestAgent(t, Config{JobID: "7", Step: "batch"}, &fakeJob{})
	_, err := a.Checkpoint(context.Background(), "periodic")
	require.NoError(t, err)
	a.Space = func() (Space, error) { return Space{Need: 512 << 20, Free: 100 << 20}, nil }
	_, err = a.Checkpoint(context.Background(), "periodic")
	require.ErrorContains(t, err, "has 100 MiB free and the checkpoint needs about 512 MiB")
	assert.Equal(t, 1, coord.ckpts, "DMTCP was not asked")
	assert.Zero(t, coord.kills)
	gens, err := a.Store.List()
	require.NoError(t, err)
	assert.Len(t, gens, 1)
	assert.Contains(t, progress.String(), "checkpoint (periodic) skipped: the checkpoint folder")
	assert.True(t, strings.HasSuffix(progress.String(), "free space or lower plugstack.conf keep=\n"))
}

func TestCheckpointImages(t *testing.T) {
	dir := t.TempDir()
	assert.Equal(t, 3, checkpointImages(dir, 3), "no restart script: the peers counted before")
	script := "#!/bin/bash\nfoo=1\ngiven_ckpt_files=\" /c/.current/ckpt_bash_1.dmtcp /c/.current/ckpt_python3_2.dmtcp /c/.current/ckpt_sleep_3.dmtcp /c/.current/ckpt_sleep_4.dmtcp /c/.current/ckpt_sleep_5.dmtcp\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "dmtcp_restart_script_98ff-40000-1.sh"), []byte(script), 0o700))
	assert.Equal(t, 5, checkpointImages(dir, 4), "a process forked during the checkpoint wrote an image too")
}

// A checkpoint folder removed while the job runs is made again; one that cannot be written
// stops the checkpoint before DMTCP is asked (it would end the application).
func TestCheckpointFolderRemovedOrUnwritable(t *testing.T) {
	a, coord, progress := newTestAgent(t, Config{JobID: "7", Step: "batch"}, &fakeJob{})
	require.NoError(t, os.RemoveAll(a.Layout.StepDir))
	_, err := a.Checkpoint(context.Background(), "periodic")
	require.NoError(t, err, "folders made again")
	assert.Equal(t, 1, coord.ckpts)
	assert.DirExists(t, a.Layout.CkptDir)

	if os.Geteuid() == 0 {
		t.Log("running as root: an unwritable folder cannot be simulated by permissions; the rest was checked")
		return
	}
	require.NoError(t, os.Chmod(a.Layout.StepDir, 0o500))
	require.NoError(t, os.Chmod(a.Layout.CkptDir, 0o500))
	defer func() { _ = os.Chmod(a.Layout.StepDir, 0o700); _ = os.Chmod(a.Layout.CkptDir, 0o700) }()
	_, err = a.Checkpoint(context.Background(), "periodic")
	require.NoError(t, err, "a folder of the job's own user is given its 0700 back")
	assert.Equal(t, 2, coord.ckpts)
	assert.NotContains(t, progress.String(), "skipped")
}
