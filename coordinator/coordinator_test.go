package coordinator

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
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

// start is Launch, then WaitUp.
func start(ctx context.Context, o Options) (*Coordinator, error) {
	c, err := Launch(o)
	if err != nil {
		return nil, err
	}
	if err := c.WaitUp(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// startInTemp starts a coordinator with its run, ckpt and tmp folders in a temporary
// folder, which it returns.
func startInTemp(ctx context.Context, t *testing.T, inst Install) (*Coordinator, string) {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"run", "ckpt", "tmp"} {
		require.NoError(t, os.Mkdir(filepath.Join(dir, d), 0o700))
	}
	c, err := start(ctx, Options{Install: inst, RunDir: filepath.Join(dir, "run"),
		CkptDir: filepath.Join(dir, "ckpt"), TmpDir: filepath.Join(dir, "tmp"), Host: "127.0.0.1"})
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			select {
			case <-c.Done():
				t.Logf("the coordinator exited: %v", c.err)
			default:
				t.Logf("the coordinator runs")
			}
			logs, _ := filepath.Glob(filepath.Join(dir, "tmp", "*", "dmtcp_coordinator*.log"))
			for _, f := range append([]string{filepath.Join(dir, "run", "coordinator.out")}, logs...) {
				b, _ := os.ReadFile(f)
				t.Logf("%s:\n%s", filepath.Base(f), b)
			}
		}
	})
	return c, dir
}

func TestRealCoordinatorLifecycle(t *testing.T) {
	inst := realInstall(t)
	v, err := inst.Version()
	require.NoError(t, err)
	assert.Regexp(t, `^\d+\.\d+`, v)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, dir := startInTemp(ctx, t, inst)
	assert.Greater(t, c.Port, 0)

	st, err := c.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, st.NumPeers)

	// Two coordinators on one node never clash: each gets its own free port.
	other, err := start(ctx, Options{Install: inst, RunDir: filepath.Join(dir, "ckpt"),
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

// The coordinator outlives Slurm's SIGTERM and a peer gone before it is written to (SIGPIPE),
// started directly when its caller ignores both and through a shell otherwise (the agent
// ignores SIGTERM only); Quit (a "q" on its stdin) ends the processes of the computation and
// the coordinator.
func TestRealCoordinatorIgnoresSIGTERMAndQuits(t *testing.T) {
	inst := realInstall(t)
	for _, tc := range []struct {
		name          string
		callerIgnores bool
	}{
		{"caller ignores SIGTERM and SIGPIPE: started directly", true},
		{"caller handles SIGTERM: started through a shell", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.callerIgnores {
				signal.Ignore(syscall.SIGTERM, syscall.SIGPIPE)
				defer func() { // handled again, as at the test's start (Reset alone keeps them ignored)
					c := make(chan os.Signal, 1)
					signal.Notify(c, syscall.SIGTERM, syscall.SIGPIPE)
					signal.Reset(syscall.SIGTERM, syscall.SIGPIPE)
				}()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, dir := startInTemp(ctx, t, inst)
			defer func() { _ = c.Quit(context.Background()) }()
			assert.Equal(t, tc.callerIgnores, c.cmd.Path == inst.Coordinator, "started as %s", c.cmd.Path)
			status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.Pid()))
			require.NoError(t, err)
			m := regexp.MustCompile(`(?m)^SigIgn:\s*([0-9a-f]+)$`).FindSubmatch(status)
			require.NotNil(t, m, "SigIgn in %s", status)
			ign, err := strconv.ParseUint(string(m[1]), 16, 64)
			require.NoError(t, err)
			assert.NotZero(t, ign&(1<<(uint(syscall.SIGTERM)-1)), "SIGTERM ignored: SigIgn %s", m[1])
			assert.NotZero(t, ign&(1<<(uint(syscall.SIGPIPE)-1)), "SIGPIPE ignored: SigIgn %s", m[1])

			require.NoError(t, syscall.Kill(c.Pid(), syscall.SIGTERM))
			sleeper := exec.Command(inst.Launch, "-j", "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port),
				"--ckptdir", filepath.Join(dir, "ckpt"), "--tmpdir", filepath.Join(dir, "tmp"), "sleep", "600")
			require.NoError(t, sleeper.Start())
			slept := make(chan error, 1)
			go func() { slept <- sleeper.Wait() }()
			require.Eventually(t, func() bool {
				st, err := c.Status(ctx)
				return err == nil && st.NumPeers == 1
			}, 20*time.Second, 50*time.Millisecond, "the coordinator answers after SIGTERM, with the process joined")

			require.NoError(t, c.Quit(ctx))
			select {
			case <-c.Done():
			default:
				t.Fatal("coordinator still running after Quit")
			}
			select {
			case <-slept:
			case <-time.After(10 * time.Second):
				t.Fatal("the computation's process outlived Quit")
			}
		})
	}
}

func TestPickAddress(t *testing.T) {
	resolves := func(addrs ...string) func(string) ([]string, error) {
		return func(string) ([]string, error) { return addrs, nil }
	}
	noName := func(h string) ([]string, error) { return nil, fmt.Errorf("lookup %s: no such host", h) }
	ipnet := func(s string) net.Addr { ip, n, _ := net.ParseCIDR(s); n.IP = ip; return n }
	for _, tc := range []struct {
		name   string
		host   string
		lookup func(string) ([]string, error)
		addrs  []net.Addr
		want   string
	}{
		{"name resolves to the node", "node7", resolves("10.1.2.3"), []net.Addr{ipnet("10.79.0.11/24")}, "node7"},
		{"name resolves to loopback only", "n1", resolves("127.0.1.1"), []net.Addr{ipnet("10.79.0.11/24")}, "10.79.0.11"},
		{"name does not resolve", "n1", noName, []net.Addr{ipnet("fe80::1/64"), ipnet("169.254.1.1/16"), ipnet("10.79.0.12/24")}, "10.79.0.12"},
		{"no address at all", "n1", noName, nil, "127.0.0.1"},
		{"no host name", "", resolves("10.1.2.3"), []net.Addr{&net.IPAddr{IP: net.ParseIP("192.168.1.5")}}, "192.168.1.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, pickAddress(tc.host, tc.lookup, tc.addrs))
		})
	}
}

// A process that joins while a checkpoint-then-exit is being taken is not part of it and
// would stay suspended for good; one caught in an exec does not even answer
// dmtcp_command -k. They are ended once the checkpoint is complete, and every image of the
// checkpoint is complete. (A new process, from dmtcp_launch, that registers once the
// computation is suspended makes DMTCP 5.0's coordinator exit instead: the task launcher
// keeps tasks from joining then, agent/launch/join.go.)
func TestRealCheckpointAndKillEndsLateJoiners(t *testing.T) {
	inst := realInstall(t)
	out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Skip("SKIP: needs python3 for a program whose checkpoint takes a while")
	}
	python := strings.TrimSpace(string(out)) // the interpreter, not a shim that execs it
	for _, tc := range []struct {
		name   string
		before []string // started with the program, before the checkpoint
	}{
		{name: "a shell that starts a program every 10 ms", before: []string{"bash", "-c", "while :; do sleep 0.01; done"}},
		{name: "a shell that starts short programs back to back", before: []string{"bash", "-c", "while :; do /bin/true; done"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var warnings []string
			c, dir := startInTemp(ctx, t, inst)
			c.SetWarn(func(f string, a ...any) { warnings = append(warnings, fmt.Sprintf(f, a...)) })
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
			waits := map[string]chan error{"the program": launch(python, "-c",
				"import os, time; b = os.urandom(300 << 20); open('"+dir+"/ready', 'w').close(); time.sleep(600)")}
			waits["the process started before"] = launch(tc.before...)
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
			require.NoError(t, <-done, "warnings: %q", warnings)
			st, err := c.Status(ctx)
			require.NoError(t, err)
			assert.Equal(t, 0, st.NumPeers, "warnings: %q", warnings)
			for name, w := range waits {
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
			t.Logf("warnings: %q", warnings)
		})
	}
}

func TestParseList(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  string
		want []Worker
	}{
		{"none", "Coordinator:\n  Host: localhost\n  Port: 7799\nClient List:\n#, PROG[virtPID:realPID]@HOST, DMTCP-UNIQUEPID, STATE, BARRIER\n\n", nil},
		{"two", "Client List:\n#, PROG[virtPID:realPID]@HOST, DMTCP-UNIQUEPID, STATE, BARRIER\n" +
			"1, sleep[40000:8625]@vm, 98ff-40000-14e509efe2e0, WorkerState::RUNNING, \n" +
			"2, python3[61000:27979]@n2, 98ff-61000-14e509efe2e0, WorkerState::CHECKPOINTED, DmtcpWorker::ckptBarrier\n",
			[]Worker{{Prog: "sleep", VirtPID: 40000, RealPID: 8625, Host: "vm", State: "WorkerState::RUNNING"},
				{Prog: "python3", VirtPID: 61000, RealPID: 27979, Host: "n2", State: "WorkerState::CHECKPOINTED"}}},
		{"a program name with brackets", "3, a[b][41000:9001]@vm, x, WorkerState::RUNNING, \n",
			[]Worker{{Prog: "a[b]", VirtPID: 41000, RealPID: 9001, Host: "vm", State: "WorkerState::RUNNING"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, parseList(tc.out))
		})
	}
}

// What stays connected after a checkpoint-then-exit and dmtcp_command -k is ended by its
// real pid, found with dmtcp_command -l.
func TestRealEndLeftoversKillsByRealPid(t *testing.T) {
	inst := realInstall(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var warnings []string
	c, dir := startInTemp(ctx, t, inst)
	c.SetWarn(func(f string, a ...any) { warnings = append(warnings, fmt.Sprintf(f, a...)) })
	defer func() { _ = c.Quit(context.Background()) }()
	cmd := exec.Command(inst.Launch, "-j", "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port),
		"--ckptdir", filepath.Join(dir, "ckpt"), "--tmpdir", filepath.Join(dir, "tmp"), "sleep", "600")
	require.NoError(t, cmd.Start())
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var ws []Worker
	require.Eventually(t, func() bool {
		var err error
		ws, err = c.List(ctx)
		return err == nil && len(ws) == 1 && ws[0].State == "WorkerState::RUNNING"
	}, 20*time.Second, 20*time.Millisecond, "the process runs under DMTCP")
	host, _ := os.Hostname()
	assert.Equal(t, Worker{Prog: "sleep", VirtPID: ws[0].VirtPID, RealPID: cmd.Process.Pid, Host: host, State: "WorkerState::RUNNING"}, ws[0])

	c.endLeftovers(ctx)
	select {
	case err := <-waited:
		assert.ErrorContains(t, err, "signal: killed")
	case <-time.After(10 * time.Second):
		t.Fatal("the process outlived endLeftovers")
	}
	require.Eventually(t, func() bool {
		st, err := c.Status(ctx)
		return err == nil && st.NumPeers == 0
	}, 10*time.Second, 20*time.Millisecond)
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], fmt.Sprintf("sleep (pid %d, WorkerState::RUNNING) was still there", cmd.Process.Pid))
}

// Launch hands the coordinator its listening socket as fd 821 and keeps no copy: the port is
// known at once, and once the coordinator is gone nothing answers on it. WaitUp then says
// why, with the coordinator's own output.
func TestLaunchHandsOverItsSocket(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"run", "ckpt", "tmp"} {
		require.NoError(t, os.Mkdir(filepath.Join(dir, d), 0o700))
	}
	fake := filepath.Join(dir, "dmtcp_coordinator")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\nreadlink /proc/$$/fd/821 > \"$0.fd\"\necho 'no can do' >&2\nexit 3\n"), 0o755))
	c, err := Launch(Options{Install: Install{Coordinator: fake}, RunDir: filepath.Join(dir, "run"),
		CkptDir: filepath.Join(dir, "ckpt"), TmpDir: filepath.Join(dir, "tmp"), Host: "127.0.0.1"})
	require.NoError(t, err)
	assert.Greater(t, c.Port, 0)
	err = c.WaitUp(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "dmtcp_coordinator exited at start")
	assert.Contains(t, err.Error(), "no can do")
	fd, err := os.ReadFile(fake + ".fd")
	require.NoError(t, err)
	assert.Regexp(t, `^socket:\[\d+\]`, string(fd), "fd 821 of the coordinator")
	_, err = net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)), time.Second)
	assert.Error(t, err, "nothing listens on the port once the coordinator is gone")
}

// A process that connects before the coordinator runs waits in the socket's queue and is
// answered.
func TestRealLaunchAnswersEarlyClients(t *testing.T) {
	inst := realInstall(t)
	dir := t.TempDir()
	for _, d := range []string{"run", "ckpt", "tmp"} {
		require.NoError(t, os.Mkdir(filepath.Join(dir, d), 0o700))
	}
	c, err := Launch(Options{Install: inst, RunDir: filepath.Join(dir, "run"),
		CkptDir: filepath.Join(dir, "ckpt"), TmpDir: filepath.Join(dir, "tmp"), Host: "127.0.0.1"})
	require.NoError(t, err)
	defer func() { _ = c.Quit(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := c.Status(ctx) // at once: the coordinator may not run yet
	require.NoError(t, err)
	assert.Equal(t, 0, st.NumPeers)
	require.NoError(t, c.WaitUp(ctx))
	port, err := os.ReadFile(filepath.Join(dir, "run", "coordinator.port"))
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(c.Port), strings.TrimSpace(string(port)), "the coordinator took the socket it was given")
}

// The process that launched the coordinator (the agent) is SIGKILLed: the coordinator goes
// with it instead of living on after the job, listening. The launching process is this test
// binary run again (launchAndWait).
func TestRealCoordinatorGoesWithItsLauncher(t *testing.T) {
	inst := realInstall(t)
	dir := t.TempDir()
	for _, d := range []string{"run", "ckpt", "tmp"} {
		require.NoError(t, os.Mkdir(filepath.Join(dir, d), 0o700))
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperLaunchAndWait$")
	cmd.Env = append(os.Environ(), "SDMTCP_HELPER_DIR="+dir, "SDMTCP_HELPER_COORD="+inst.Coordinator)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var pid int
	_, err = fmt.Fscanf(out, "coordinator %d\n", &pid)
	require.NoError(t, err, "the helper's coordinator pid")
	// Some time with other goroutines and threads, as an agent has, before the kill.
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, syscall.Kill(pid, 0), "the coordinator runs while its launcher does")
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	assert.Eventually(t, func() bool { return syscall.Kill(pid, 0) != nil }, 3*time.Second, 20*time.Millisecond,
		"the coordinator (pid %d) outlived its launcher", pid)
}

// TestHelperLaunchAndWait is the launching process of TestRealCoordinatorGoesWithItsLauncher.
func TestHelperLaunchAndWait(t *testing.T) {
	dir := os.Getenv("SDMTCP_HELPER_DIR")
	if dir == "" {
		t.Skip("SKIP: run by TestRealCoordinatorGoesWithItsLauncher only")
	}
	c, err := start(context.Background(), Options{Install: Install{Coordinator: os.Getenv("SDMTCP_HELPER_COORD")},
		RunDir: filepath.Join(dir, "run"), CkptDir: filepath.Join(dir, "ckpt"), TmpDir: filepath.Join(dir, "tmp"), Host: "127.0.0.1"})
	require.NoError(t, err)
	fmt.Printf("coordinator %d\n", c.cmd.Process.Pid)
	for { // busy goroutines, so that the runtime makes and parks threads
		go func() { time.Sleep(time.Millisecond) }()
		time.Sleep(time.Millisecond)
	}
}

// The coordinator's environment preloads the guard alone and says what it lets through.
func TestGuardEnv(t *testing.T) {
	base := []string{"PATH=/bin", "LD_PRELOAD=/usr/lib/other.so", "SDMTCP_GUARD_ALLOW=6.6.6.6", "SDMTCP_GUARD_LOCAL=0", "LANG=C"}
	for _, tc := range []struct {
		name string
		o    Options
		want []string
	}{
		{"one node", Options{Guard: "/g.so", LocalOnly: true, Allow: []string{"10.0.0.1"}},
			[]string{"PATH=/bin", "LANG=C", "LD_PRELOAD=/g.so", "SDMTCP_GUARD_LOCAL=1"}},
		{"across nodes", Options{Guard: "/g.so", Allow: []string{"10.0.0.1", "10.0.0.2"}},
			[]string{"PATH=/bin", "LANG=C", "LD_PRELOAD=/g.so", "SDMTCP_GUARD_ALLOW=10.0.0.1,10.0.0.2"}},
		{"across nodes, no address", Options{Guard: "/g.so"},
			[]string{"PATH=/bin", "LANG=C", "LD_PRELOAD=/g.so"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, guardEnv(base, tc.o))
		})
	}
}

// What a coordinator that exited at start says tells whether its guard was missing.
func TestGuardMissed(t *testing.T) {
	for _, tc := range []struct {
		name, out, want string
	}{
		{"not loadable", "ERROR: ld.so: object '/x/g.so' from LD_PRELOAD cannot be preloaded (invalid ELF header): ignored.\ndmtcp_coordinator starting...",
			"the dynamic loader did not load it: ERROR: ld.so: object '/x/g.so' from LD_PRELOAD cannot be preloaded (invalid ELF header): ignored."},
		{"loaded, did not hand over", "[40000] ERROR at coordinatorapi.cpp: failed to create listen socket for port 4242. If msg is ...",
			"it did not hand the coordinator the job's socket (a library that is not the guard, or not loaded)"},
		{"another failure", "cannot listen: the test says no", ""},
		{"nothing", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, guardMissed(tc.out))
		})
	}
}

// A file mapped into a process is found in its memory map; another is not.
func TestGuardMapped(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	assert.NoError(t, guardMapped("/proc/self", exe), "the test binary is mapped into itself")
	other := filepath.Join(t.TempDir(), "g.so")
	require.NoError(t, os.WriteFile(other, []byte("x"), 0o644))
	err = guardMapped("/proc/self", other)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not in the coordinator's memory map")
	err = guardMapped("/proc/self", filepath.Join(t.TempDir(), "missing.so"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot check it")
}

// builtGuard is build/slurm-dmtcp-coordguard.so of this checkout (make builds it), or a skip.
func builtGuard(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "build", "slurm-dmtcp-coordguard.so"))
	require.NoError(t, err)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("SKIP: needs %s: run make first", p)
	}
	return p
}

// With the real guard, a real coordinator takes the job's socket from it and answers; the
// guard is in its memory map. With a file that is not a library, or a library that is not
// the guard, the coordinator never serves the job's port: WaitUp says the guard is not
// active, and nothing answers on the port.
func TestRealCoordinatorGuardActiveOrRefused(t *testing.T) {
	inst := realInstall(t)
	guard := builtGuard(t)
	junk := filepath.Join(t.TempDir(), "slurm-dmtcp-coordguard.so")
	require.NoError(t, os.WriteFile(junk, []byte("not a library\n"), 0o755))
	libs, _ := filepath.Glob("/lib/x86_64-linux-gnu/libm.so.6")
	for _, tc := range []struct {
		name, guard, want string
	}{
		{"the guard", guard, ""},
		{"not a library", junk, "the dynamic loader did not load it"},
		{"a library that is not the guard", append(libs, "")[0], "did not hand the coordinator the job's socket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.guard == "" {
				t.Skip("SKIP: no /lib/x86_64-linux-gnu/libm.so.6 to stand for another library")
			}
			dir := t.TempDir()
			for _, d := range []string{"run", "ckpt", "tmp"} {
				require.NoError(t, os.Mkdir(filepath.Join(dir, d), 0o700))
			}
			c, err := Launch(Options{Install: inst, RunDir: filepath.Join(dir, "run"), CkptDir: filepath.Join(dir, "ckpt"),
				TmpDir: filepath.Join(dir, "tmp"), Host: "127.0.0.1", Guard: tc.guard, LocalOnly: true})
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = c.WaitUp(ctx)
			if tc.want == "" {
				require.NoError(t, err)
				defer func() { _ = c.Quit(context.Background()) }()
				st, err := c.Status(ctx)
				require.NoError(t, err)
				assert.Equal(t, 0, st.NumPeers)
				return
			}
			var ge *GuardError
			require.ErrorAs(t, err, &ge)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), tc.guard)
			<-c.Done()
			_, err = net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)), time.Second)
			assert.Error(t, err, "nothing answers on the job's port")
		})
	}
}
