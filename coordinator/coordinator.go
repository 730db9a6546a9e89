package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options says where a coordinator keeps its files.
type Options struct {
	Install Install
	RunDir  string // private folder of the step: port file, coordinator log
	CkptDir string // where dmtcp_restart_script.sh goes
	TmpDir  string // DMTCP's temporary files (instead of /tmp/dmtcp-USER@HOST)
	Host    string // name the tasks use to reach it; "" = this node's name, else 127.0.0.1
	// Guard, when set, is preloaded into the coordinator (LD_PRELOAD): the library that
	// refuses connections from other users of the node (slurm-dmtcp-coordguard.so). The
	// listening socket then goes to the guard (guardHandoffFD), which hands it on to the
	// coordinator: a coordinator without the guard active cannot serve the job's port, and
	// WaitUp says so with a *GuardError.
	Guard string
	// LocalOnly makes the guard refuse connections from other hosts too (a step on one
	// node: every process of the job is on this host).
	LocalOnly bool
	// Allow is the numeric addresses of the other hosts whose connections the guard lets
	// through (the nodes of a step across nodes); ignored with LocalOnly.
	Allow []string
}

// GuardError says that the coordinator guard is not active in the coordinator: missing,
// not loadable, or ignored.
type GuardError struct {
	Guard string // the library's path
	Why   string
}

func (e *GuardError) Error() string {
	return fmt.Sprintf("coordinator guard %s: %s; the step is not run with an unguarded coordinator "+
		"(every user of the node could command it)", e.Guard, e.Why)
}

// Coordinator is a running dmtcp_coordinator that this process started and owns.
type Coordinator struct {
	Host string
	Port int
	inst Install
	cmd  *exec.Cmd
	// stdin stays open for the coordinator's life: at EOF on stdin it busy-loops on its
	// prompt, and when the agent dies the pipe closes with it.
	stdin io.WriteCloser
	done  chan struct{}
	err   error
	// ckptDir is where the coordinator writes its restart script once every process of a
	// checkpoint has written its image.
	ckptDir string
	// warnf hears what a checkpoint-then-exit had to do about processes left after it
	// (CheckpointAndKill); nil: nobody (SetWarn).
	warnf func(format string, args ...any)
	// portFile is where it writes its port once it listens; outFile has its output.
	portFile, outFile string
	// guard is Options.Guard: WaitUp checks that it is mapped into the coordinator.
	guard string
}

// Status is dmtcp_command --json -s.
type Status struct {
	CommandStatus string `json:"command_status"`
	NumPeers      int    `json:"num_peers"`
	Running       bool   `json:"running"`
	Interval      int    `json:"checkpoint_interval"`
}

// protectedCoordFD is where a dmtcp_coordinator looks for a listening socket it inherits
// (DMTCP's PROTECTED_COORD_FD, include/protectedfds.h; dmtcp_launch --new-coordinator hands
// its coordinator a listener the same way).
const protectedCoordFD = 821

// guardHandoffFD is where the listening socket goes when a guard is preloaded: the guard
// moves it to protectedCoordFD before the coordinator's main (spank/coordguard.h has the
// same number). The coordinator is also told to bind that very port (-p): without the
// guard it finds no fd 821, its bind fails (the port is taken by the socket it holds), and
// it exits at once, never listening anywhere without the guard.
const guardHandoffFD = 822

// Launch runs dmtcp_coordinator with SIGTERM ignored, so that Slurm's SIGTERM to every
// process of the step does not take it away before a checkpoint, and returns at once. Its
// listening socket is made here, on a free port, and handed to it as fd 821: the port is
// known before the coordinator runs, and processes that connect before it answers wait in
// the socket's queue. WaitUp says when it runs. A caller that has SIGTERM ignored itself
// (signal.Ignore) passes that on through the exec; otherwise a shell sets it first (a
// process start more).
func Launch(o Options) (*Coordinator, error) {
	portFile := filepath.Join(o.RunDir, "coordinator.port")
	_ = os.Remove(portFile)
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{}) // 0.0.0.0, as the coordinator's own
	if err != nil {
		return nil, fmt.Errorf("coordinator's listening socket: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	sock, err := ln.File() // a copy: the coordinator's; this process keeps none open
	ln.Close()
	if err != nil {
		return nil, fmt.Errorf("coordinator's listening socket: %w", err)
	}
	defer sock.Close()
	bindPort := "0"
	if o.Guard != "" {
		bindPort = strconv.Itoa(port)
	}
	args := []string{"-q", "-p", bindPort, "--port-file", portFile, "--ckptdir", o.CkptDir,
		"--tmpdir", o.TmpDir, "--stale-timeout", "-1",
		"--coord-logfile", filepath.Join(o.RunDir, "coordinator.log")}
	// SIG_IGN survives the exec; Go keeps a signal that it ignores ignored in its children.
	// SIGPIPE too: DMTCP 5.0's coordinator does not ignore it, and a write to a peer that
	// has just gone (a short program that joined during a checkpoint and ended) killed it
	// ("signal: broken pipe"), and the checkpoint with it; ignored, the write fails and the
	// coordinator drops that peer.
	cmd := exec.Command(o.Install.Coordinator, args...)
	if !signal.Ignored(syscall.SIGTERM) || !signal.Ignored(syscall.SIGPIPE) {
		cmd = exec.Command("/bin/sh", append([]string{"-c", `trap '' TERM PIPE; exec "$0" "$@"`, o.Install.Coordinator}, args...)...)
	}
	logf, err := os.OpenFile(filepath.Join(o.RunDir, "coordinator.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("coordinator output file: %w", err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = make([]*os.File, guardHandoffFD-2) // entry i is fd 3+i; nil ones are closed
	if o.Guard != "" {
		cmd.ExtraFiles[guardHandoffFD-3] = sock
		cmd.Env = guardEnv(os.Environ(), o)
	} else {
		cmd.ExtraFiles = cmd.ExtraFiles[:protectedCoordFD-2]
		cmd.ExtraFiles[protectedCoordFD-3] = sock
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("coordinator stdin: %w", err)
	}
	// The coordinator goes when this process goes (SIGKILLed, say): it would otherwise
	// live on after the job, listening. The kernel sends that signal when the thread that
	// forked the coordinator ends, so the thread is kept, locked, as long as the
	// coordinator runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c := &Coordinator{inst: o.Install, cmd: cmd, stdin: stdin, done: make(chan struct{}), ckptDir: o.CkptDir,
		Port: port, portFile: portFile, outFile: filepath.Join(o.RunDir, "coordinator.out"), guard: o.Guard}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.err = cmd.Wait()
		close(c.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", o.Install.Coordinator, err)
	}
	c.Host = o.Host
	if c.Host == "" {
		c.Host = reachableHostname()
	}
	return c, nil
}

// WaitUp waits until the coordinator runs on the socket Launch gave it: it writes its port
// file once it has taken the socket (a port of its own there means it did not, and nobody
// answers on Port). An error says why it is not up, with its own output; the coordinator is
// killed when ctx ends first.
func (c *Coordinator) WaitUp(ctx context.Context) error {
	started := time.Now()
	for {
		if b, err := os.ReadFile(c.portFile); err == nil {
			if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && p > 0 {
				if p != c.Port {
					c.kill()
					if c.guard != "" {
						return &GuardError{Guard: c.guard, Why: fmt.Sprintf("not active in dmtcp_coordinator: it listens on port %d, not on the job's socket (port %d) that the guard hands it", p, c.Port)}
					}
					return fmt.Errorf("dmtcp_coordinator listens on port %d, not on the socket it was given (port %d): is it DMTCP 5.0 or later?", p, c.Port)
				}
				if c.guard != "" {
					if err := guardMapped(filepath.Join("/proc", strconv.Itoa(c.Pid())), c.guard); err != nil {
						c.kill()
						return &GuardError{Guard: c.guard, Why: "not active in dmtcp_coordinator: " + err.Error()}
					}
				}
				return nil
			}
		}
		select {
		case <-c.done:
			out, _ := os.ReadFile(c.outFile)
			if why := guardMissed(string(out)); c.guard != "" && why != "" {
				return &GuardError{Guard: c.guard, Why: "not active in dmtcp_coordinator: " + why}
			}
			return fmt.Errorf("dmtcp_coordinator exited at start (%v): %s", c.err, strings.TrimSpace(string(out)))
		case <-ctx.Done():
			c.kill()
			return fmt.Errorf("dmtcp_coordinator did not start in time: %w", ctx.Err())
		case <-time.After(startPoll(time.Since(started))):
		}
	}
}

// guardEnv is the coordinator's environment with the guard preloaded: LD_PRELOAD is the
// guard alone (nothing the caller had preloaded), and what the guard lets through.
func guardEnv(env []string, o Options) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k != "LD_PRELOAD" && !strings.HasPrefix(k, "SDMTCP_GUARD_") {
			out = append(out, kv)
		}
	}
	out = append(out, "LD_PRELOAD="+o.Guard)
	if o.LocalOnly {
		out = append(out, "SDMTCP_GUARD_LOCAL=1")
	} else if len(o.Allow) > 0 {
		out = append(out, "SDMTCP_GUARD_ALLOW="+strings.Join(o.Allow, ","))
	}
	return out
}

// guardMissed is why a coordinator that exited at start had no guard, from its output: the
// dynamic loader could not preload it, or the coordinator did not get the job's socket from
// it (its own bind of the job's port then fails); "" when it says neither.
func guardMissed(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "LD_PRELOAD cannot be preloaded") {
			return "the dynamic loader did not load it: " + strings.TrimSpace(l)
		}
	}
	if strings.Contains(out, "failed to create listen socket") {
		return "it did not hand the coordinator the job's socket (a library that is not the guard, or not loaded)"
	}
	return ""
}

// guardMapped checks that the guard is mapped into the process whose /proc folder is
// procDir: a line of its maps names the guard's file (same inode, same path).
func guardMapped(procDir, guard string) error {
	st, err := os.Stat(guard)
	if err != nil {
		return fmt.Errorf("cannot check it: %w", err)
	}
	want, err := filepath.EvalSymlinks(guard)
	if err != nil {
		return fmt.Errorf("cannot check it: %w", err)
	}
	maps, err := os.ReadFile(filepath.Join(procDir, "maps"))
	if err != nil {
		return fmt.Errorf("cannot read the coordinator's memory map: %w", err)
	}
	ino := strconv.FormatUint(st.Sys().(*syscall.Stat_t).Ino, 10)
	for _, l := range strings.Split(string(maps), "\n") {
		// address perms offset dev inode path
		f := strings.Fields(l)
		if len(f) >= 6 && f[4] == ino && strings.Join(f[5:], " ") == want {
			return nil
		}
	}
	return fmt.Errorf("it is not in the coordinator's memory map (%s)", filepath.Join(procDir, "maps"))
}

// startPoll is how long WaitUp waits before it looks for the port file again, elapsed
// after the coordinator's start: it takes a few ms, so every 0.5 ms at first, every 5 ms
// after the first 100 ms.
func startPoll(elapsed time.Duration) time.Duration {
	if elapsed < 100*time.Millisecond {
		return 500 * time.Microsecond
	}
	return 5 * time.Millisecond
}

// NodeAddress is how tasks on other nodes reach a coordinator on this node: the node's name
// when it resolves to an address that is not a loopback one, else the first IPv4 address of
// an interface that is up and not a loopback (clusters without name resolution for their
// nodes, such as the multi-node test cluster), else the loopback address.
func NodeAddress() string {
	h, _ := os.Hostname()
	ifaces, _ := net.Interfaces()
	var addrs []net.Addr
	for _, i := range ifaces {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		a, _ := i.Addrs()
		addrs = append(addrs, a...)
	}
	return pickAddress(h, net.LookupHost, addrs)
}

// pickAddress is NodeAddress with its sources given.
func pickAddress(host string, lookup func(string) ([]string, error), addrs []net.Addr) string {
	if host != "" {
		if resolved, err := lookup(host); err == nil {
			for _, a := range resolved {
				if ip := net.ParseIP(a); ip != nil && !ip.IsLoopback() {
					return host
				}
			}
		}
	}
	for _, a := range addrs {
		var ip net.IP
		switch v := a.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		}
		if ip4 := ip.To4(); ip4 != nil && !ip4.IsLoopback() && !ip4.IsLinkLocalUnicast() {
			return ip4.String()
		}
	}
	return "127.0.0.1"
}

// reachableHostname is this node's name when it resolves, else the loopback address.
func reachableHostname() string {
	h, err := os.Hostname()
	if err == nil {
		if addrs, err := net.LookupHost(h); err == nil && len(addrs) > 0 {
			return h
		}
	}
	return "127.0.0.1"
}

func (c *Coordinator) command(ctx context.Context, args ...string) ([]byte, error) {
	full := append([]string{"-h", c.Host, "-p", strconv.Itoa(c.Port)}, args...)
	out, err := exec.CommandContext(ctx, c.inst.Command, full...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("dmtcp_command %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// Status asks the coordinator how many processes it has and whether they are running.
func (c *Coordinator) Status(ctx context.Context) (Status, error) {
	out, err := c.command(ctx, "--json", "-s")
	if err != nil {
		return Status{}, err
	}
	var s Status
	if err := json.Unmarshal(out, &s); err != nil {
		return Status{}, fmt.Errorf("dmtcp_command --json -s: %w in %q", err, firstLine(string(out)))
	}
	if s.CommandStatus != "DMT_COORD_SUCCESS" {
		return s, fmt.Errorf("dmtcp_command --json -s: %s", s.CommandStatus)
	}
	return s, nil
}

// Checkpoint asks for a checkpoint and blocks until every process has written its image.
func (c *Coordinator) Checkpoint(ctx context.Context) error {
	_, err := c.command(ctx, "-bc")
	return err
}

// leftoverGrace is how long processes may stay after a checkpoint-then-exit is complete
// before they are killed: the checkpointed ones exit by themselves within it.
const leftoverGrace = time.Second

// CheckpointAndKill asks for a checkpoint after which every process exits at once, never
// running past its image (dmtcp_command -kc), and waits until all of them have gone. The
// processes exit with status 0.
//
// A process started while the checkpoint is taken (a shell's next command, say) joins the
// coordinator after the checkpoint began: it is not part of it, and the coordinator keeps it
// suspended for good instead of ending it. Once the checkpoint is complete (the coordinator
// has written its restart script) and leftoverGrace has passed, what is left is killed
// (dmtcp_command -k). A process can also hang in its exit after writing its image (seen
// under load: a shell's `sleep`, state CHECKPOINTED, both threads waiting on a futex) and
// not answer -k either: after another leftoverGrace, those on this node are sent SIGKILL by
// their real pid (dmtcp_command -l), and after a third, the checkpoint is complete whatever
// is left (on other nodes: Slurm ends them with the step); SetWarn's function hears of each.
func (c *Coordinator) CheckpointAndKill(ctx context.Context) error {
	requested := time.Now()
	if _, err := c.command(ctx, "-kc"); err != nil {
		return err
	}
	var complete, killed, signalled time.Time
	for {
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if st.NumPeers == 0 {
			return nil
		}
		if complete.IsZero() && c.restartScriptSince(requested) {
			complete = time.Now()
		}
		switch {
		case complete.IsZero() || time.Since(complete) < leftoverGrace:
		case killed.IsZero():
			if err := c.Kill(ctx); err != nil {
				return fmt.Errorf("checkpoint then exit: %d processes that joined during the checkpoint stayed: %w", st.NumPeers, err)
			}
			killed = time.Now()
		case time.Since(killed) < leftoverGrace:
		case signalled.IsZero():
			c.endLeftovers(ctx)
			signalled = time.Now()
		case time.Since(signalled) >= leftoverGrace:
			c.warn("checkpoint complete; %d processes are still connected (on other nodes?): Slurm ends them with the step", st.NumPeers)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("checkpoint then exit: %d processes still running: %w", st.NumPeers, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// endLeftovers sends SIGKILL to the processes still connected on this node, by their real
// pid, when they belong to this user (the agent never runs as root; this keeps it so).
func (c *Coordinator) endLeftovers(ctx context.Context) {
	ws, err := c.List(ctx)
	if err != nil {
		c.warn("processes stayed after the checkpoint and dmtcp_command -k, and the list of them failed: %v", err)
		return
	}
	host, _ := os.Hostname()
	for _, w := range ws {
		if w.Host != host || w.RealPID <= 1 || uidOf(w.RealPID) != os.Getuid() {
			continue
		}
		if err := syscall.Kill(w.RealPID, syscall.SIGKILL); err == nil {
			c.warn("%s (pid %d, %s) was still there after the checkpoint and dmtcp_command -k: killed", w.Prog, w.RealPID, w.State)
		}
	}
}

// uidOf is the real uid of a process, -1 when it is gone or unreadable.
func uidOf(pid int) int {
	if uid, ok := statusNumber(filepath.Join("/proc", strconv.Itoa(pid)), "Uid:"); ok {
		return uid
	}
	return -1
}

// statusNumber is the first number of the line that starts with field (e.g. "Uid:") in the
// status file of the process folder dir (/proc/<pid>); false when it is gone or unreadable.
func statusNumber(dir, field string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field {
			n, err := strconv.Atoi(f[1])
			return n, err == nil
		}
	}
	return 0, false
}

func (c *Coordinator) warn(format string, args ...any) {
	if c.warnf != nil {
		c.warnf(format, args...)
	}
}

// Worker is one process connected to the coordinator, as dmtcp_command -l lists it.
type Worker struct {
	Prog    string
	VirtPID int // the pid the process sees (DMTCP's virtual pid)
	RealPID int // its pid on Host
	Host    string
	State   string // WorkerState::RUNNING, ...
}

// List is the processes connected to the coordinator (dmtcp_command -l).
func (c *Coordinator) List(ctx context.Context) ([]Worker, error) {
	out, err := c.command(ctx, "-l")
	if err != nil {
		return nil, err
	}
	return parseList(string(out)), nil
}

// workerLine is one line of dmtcp_command -l: "#, PROG[virtPID:realPID]@HOST, UNIQUEPID,
// STATE, BARRIER".
var workerLine = regexp.MustCompile(`^\d+, (.*)\[(\d+):(\d+)\]@([^,]+), [^,]*, ([^,]*),`)

func parseList(out string) []Worker {
	var ws []Worker
	for _, l := range strings.Split(out, "\n") {
		m := workerLine.FindStringSubmatch(strings.TrimSpace(l) + " ")
		if m == nil {
			continue
		}
		v, _ := strconv.Atoi(m[2])
		r, _ := strconv.Atoi(m[3])
		ws = append(ws, Worker{Prog: m[1], VirtPID: v, RealPID: r, Host: m[4], State: strings.TrimSpace(m[5])})
	}
	return ws
}

// restartScriptSince says whether the coordinator wrote a restart script at or after t.
func (c *Coordinator) restartScriptSince(t time.Time) bool {
	if c.ckptDir == "" {
		return false
	}
	path, mod := NewestRestartScript(c.ckptDir)
	return path != "" && !mod.Before(t)
}

// NewestRestartScript is the newest restart script (dmtcp_restart_script_*.sh) a
// coordinator wrote in ckptDir, with its modification time; "" when there is none. The
// coordinator writes one when every process of a checkpoint has written its image.
func NewestRestartScript(ckptDir string) (path string, mod time.Time) {
	scripts, _ := filepath.Glob(filepath.Join(ckptDir, "dmtcp_restart_script_*.sh"))
	for _, s := range scripts {
		if st, err := os.Stat(s); err == nil && (path == "" || !st.ModTime().Before(mod)) {
			path, mod = s, st.ModTime()
		}
	}
	return path, mod
}

// Kill ends every process of the computation (dmtcp_command -k); the coordinator stays.
func (c *Coordinator) Kill(ctx context.Context) error {
	_, err := c.command(ctx, "-k")
	return err
}

// ErrGone is returned by Quit when the coordinator had already exited.
var ErrGone = errors.New("coordinator already exited")

// Quit asks the coordinator to exit (its processes are killed with it) and waits for it,
// killing it once the context ends.
func (c *Coordinator) Quit(ctx context.Context) error {
	select {
	case <-c.done:
		return ErrGone
	default:
	}
	// The coordinator reads commands from its stdin: "q" is what dmtcp_command -q asks for
	// (every process of the computation killed, then the coordinator exits), without a
	// process start.
	var qerr error
	if _, err := io.WriteString(c.stdin, "q\n"); err != nil {
		_, qerr = c.command(ctx, "-q")
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		c.kill()
		<-c.done
		return fmt.Errorf("coordinator did not exit after dmtcp_command -q: killed: %w", ctx.Err())
	}
	_ = c.stdin.Close()
	return qerr
}

// SetWarn says who hears what CheckpointAndKill had to do about processes left after a
// checkpoint; call it before any checkpoint.
func (c *Coordinator) SetWarn(warn func(format string, args ...any)) { c.warnf = warn }

// Done is closed once the coordinator process has exited.
func (c *Coordinator) Done() <-chan struct{} { return c.done }

// Pid is the coordinator's process id.
func (c *Coordinator) Pid() int { return c.cmd.Process.Pid }

func (c *Coordinator) kill() {
	_ = c.cmd.Process.Kill()
	_ = c.stdin.Close()
}
