package launch

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/coordinator"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// joinHelperEnv makes the test binary a task launcher that joins the computation: the
// command to supervise, its words separated by \x1f, with the runtime folder in
// joinHelperRunDir (see TestMain).
const (
	joinHelperEnv    = "SDMTCP_TEST_JOIN_ARGV"
	joinHelperRunDir = "SDMTCP_TEST_JOIN_RUNDIR"
)

// fakeProc writes <root>/<pid>/stat with the given thread count and <root>/<pid>/exe as a
// link to exe.
func fakeProc(t *testing.T, root string, pid int, state string, threads int, exe string) {
	dir := filepath.Join(root, strconv.Itoa(pid))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	line := strconv.Itoa(pid) + " (x) " + state + " 1 0 0 0 0 0 0 0 0 0 0 0 0 0 20 0 " + strconv.Itoa(threads) + " 0 4242 10000 10"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stat"), []byte(line), 0o644))
	require.NoError(t, os.Symlink(exe, filepath.Join(dir, "exe")))
}

func TestJoined(t *testing.T) {
	root := t.TempDir()
	fakeProc(t, root, 10, "S", 1, "/opt/dmtcp/bin/dmtcp_launch")
	fakeProc(t, root, 11, "S", 2, "/opt/dmtcp/bin/dmtcp_launch")
	fakeProc(t, root, 12, "R", 1, "/usr/bin/python3.11")
	fakeProc(t, root, 13, "S", 2, "/usr/bin/python3.11")
	fakeProc(t, root, 14, "Z", 1, "/usr/bin/python3.11")
	for _, tc := range []struct {
		name string
		pid  int
		want string
	}{
		{"dmtcp_launch registers the process", 10, ""},
		{"dmtcp_launch with a thread of its own", 11, ""},
		{"the program, before DMTCP's checkpoint thread", 12, ""},
		{"the program with DMTCP's checkpoint thread", 13, "joined"},
		{"a zombie", 14, "ended"},
		{"gone", 15, "ended"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, joined(root, tc.pid))
		})
	}
}

// A task waits, a bounded time, while a checkpoint holds the fork lock, and holds it shared
// itself once it has it; without a lock file or runtime folder it takes nothing.
func TestHoldJoin(t *testing.T) {
	l, err := holdJoin("", time.Second)
	assert.NoError(t, err)
	assert.Nil(t, l, "no runtime folder")
	dir := t.TempDir()
	l, err = holdJoin(dir, time.Second)
	assert.NoError(t, err)
	assert.Nil(t, l, "no lock file")

	agent, err := os.OpenFile(filepath.Join(dir, proto.ForkLockFile), os.O_RDONLY|os.O_CREATE, 0o600)
	require.NoError(t, err)
	defer agent.Close()
	require.NoError(t, syscall.Flock(int(agent.Fd()), syscall.LOCK_EX))
	start := time.Now()
	l, err = holdJoin(dir, 100*time.Millisecond)
	assert.ErrorContains(t, err, "still held its lock after 100ms")
	assert.Nil(t, l)
	assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)

	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = syscall.Flock(int(agent.Fd()), syscall.LOCK_UN)
	}()
	l, err = holdJoin(dir, 10*time.Second)
	require.NoError(t, err)
	require.NotNil(t, l)
	assert.ErrorIs(t, syscall.Flock(int(agent.Fd()), syscall.LOCK_EX|syscall.LOCK_NB), syscall.EWOULDBLOCK, "the task holds the lock")
	assert.Equal(t, "ended", l.releaseWhenJoined(1<<30, time.Second), "a task whose child is gone")
	assert.NoError(t, syscall.Flock(int(agent.Fd()), syscall.LOCK_EX|syscall.LOCK_NB), "released")
}

// realCoordinator starts a real DMTCP coordinator with its folders and the step's fork lock
// in a temporary folder, or skips with one line saying why.
func realCoordinator(t *testing.T) (*coordinator.Coordinator, string, *os.File) {
	t.Helper()
	inst, err := coordinator.Find(os.Getenv("DMTCP_PREFIX"), os.Getenv("PATH"))
	if err != nil {
		t.Skipf("SKIP: needs real DMTCP: %v", err)
	}
	dir := t.TempDir()
	for _, d := range []string{"run", "ckpt", "tmp"} {
		require.NoError(t, os.Mkdir(filepath.Join(dir, d), 0o700))
	}
	c, err := coordinator.Launch(coordinator.Options{Install: inst, RunDir: filepath.Join(dir, "run"),
		CkptDir: filepath.Join(dir, "ckpt"), TmpDir: filepath.Join(dir, "tmp"), Host: "127.0.0.1"})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, c.WaitUp(ctx))
	t.Cleanup(func() { _ = c.Quit(context.Background()) })
	lock, err := os.OpenFile(filepath.Join(dir, "run", proto.ForkLockFile), os.O_RDONLY|os.O_CREATE, 0o600)
	require.NoError(t, err)
	t.Cleanup(func() { lock.Close() })
	return c, dir, lock
}

// realPython is the path of the Python interpreter itself (not a shim such as pyenv's,
// a shell script that execs it), or skips with one line saying why.
func realPython(t *testing.T) string {
	out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Skip("SKIP: needs python3 for a program whose checkpoint takes a while")
	}
	return strings.TrimSpace(string(out))
}

// dmtcpLaunch is a task's dmtcp_launch command joined to c, with folders in dir.
func dmtcpLaunch(c *coordinator.Coordinator, dir string, prog ...string) []string {
	inst, _ := coordinator.Find(os.Getenv("DMTCP_PREFIX"), os.Getenv("PATH"))
	return append([]string{inst.Launch, "-j", "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port),
		"--ckptdir", filepath.Join(dir, "ckpt"), "--tmpdir", filepath.Join(dir, "tmp"), "--no-gzip"}, prog...)
}

// startTask starts the test binary as a task launcher that joins c with prog.
func startTask(t *testing.T, c *coordinator.Coordinator, dir string, prog ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), joinHelperEnv+"="+strings.Join(dmtcpLaunch(c, dir, prog...), "\x1f"),
		joinHelperRunDir+"="+filepath.Join(dir, "run"))
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// A task that starts while a checkpoint-then-exit is being taken (Slurm's SIGTERM as the
// step's last task starts) joins once the checkpoint is over: DMTCP 5.0's coordinator exits
// when a process registers with a suspended computation, taking the step with it.
func TestRealTaskJoinsAfterCheckpoint(t *testing.T) {
	c, dir, lock := realCoordinator(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// 300 MB of memory: the checkpoint takes long enough for the task to start within it.
	python := realPython(t)
	program := exec.Command(dmtcpLaunch(c, dir)[0], append(dmtcpLaunch(c, dir)[1:], python, "-c",
		"import os, time; b = os.urandom(300 << 20); open('"+dir+"/ready', 'w').close(); time.sleep(600)")...)
	require.NoError(t, program.Start())
	defer func() { _ = program.Process.Kill(); _ = program.Wait() }()
	require.Eventually(t, func() bool { _, err := os.Stat(dir + "/ready"); return err == nil },
		50*time.Second, 20*time.Millisecond, "the program started")

	// As the agent asks for a checkpoint: the fork lock held exclusively throughout.
	require.NoError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX))
	done := make(chan error, 1)
	go func() { done <- c.CheckpointAndKill(ctx) }()
	time.Sleep(150 * time.Millisecond)
	task := startTask(t, c, dir, "sleep", "600")
	require.NoError(t, <-done)
	ws, err := c.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, ws, "the task joined during the checkpoint")
	require.NoError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_UN))

	require.Eventually(t, func() bool {
		ws, err := c.List(ctx)
		return err == nil && len(ws) == 1 && ws[0].Prog == "sleep" && ws[0].State == "WorkerState::RUNNING"
	}, 30*time.Second, 20*time.Millisecond, "the task runs under DMTCP after the checkpoint")
	st, err := c.Status(ctx)
	require.NoError(t, err, "the coordinator lives")
	assert.Equal(t, 1, st.NumPeers)
	images, _ := filepath.Glob(filepath.Join(dir, "ckpt", "ckpt_python3*.dmtcp"))
	assert.Len(t, images, 1, "the program's image")
	assert.Nil(t, task.ProcessState, "the task runs")
}

// A checkpoint asked for while a task is starting waits until the task's program runs
// under DMTCP: the agent's exclusive hold of the fork lock comes only then.
func TestRealCheckpointWaitsForJoiningTask(t *testing.T) {
	c, dir, lock := realCoordinator(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	startTask(t, c, dir, "sleep", "600")
	require.Eventually(t, func() bool {
		err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			_ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
		}
		return err == syscall.EWOULDBLOCK
	}, 10*time.Second, time.Millisecond, "the starting task holds the lock")
	require.Eventually(t, func() bool {
		return syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
	}, 30*time.Second, time.Millisecond, "the task lets the lock go")
	ws, err := c.List(ctx)
	require.NoError(t, err)
	require.Len(t, ws, 1, "the task is registered once it lets the lock go")
	assert.Equal(t, "sleep", ws[0].Prog)
	assert.Equal(t, "joined", joined("/proc", ws[0].RealPID))
	require.NoError(t, c.Checkpoint(ctx))
	images, _ := filepath.Glob(filepath.Join(dir, "ckpt", "ckpt_sleep_*.dmtcp"))
	assert.Len(t, images, 1, "the task's image")
}
