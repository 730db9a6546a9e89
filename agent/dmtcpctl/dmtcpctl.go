// Package dmtcpctl is the dmtcpctl command: status, checkpoint, wait, interval and
// generations of a --dmtcp job, through its agent's control socket (proto/control). Inside
// the job it uses $SLURM_DMTCP_CONTROL_SOCKET; from a login node, --job ID runs itself inside
// the job's allocation with `srun --overlap` (no network port of its own).
package dmtcpctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/safepath"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
	ctl "github.com/slurm-dmtcp/slurm-dmtcp/proto/control"
)

// Exit codes (docs/user.md, "Exit codes").
const (
	ExitOK        = 0
	ExitFailed    = 1 // the agent answered with an error (failed, policy, stopping, not_found, ...)
	ExitUsage     = 2 // bad command line
	ExitNoAgent   = 3 // the agent cannot be reached (not in a --dmtcp job, no socket, srun failed to start)
	ExitTimeout   = 4 // the checkpoint did not finish within --timeout (it goes on)
	ExitForbidden = 5 // the agent refused this user or this job
)

// Env is the outside world of one run (the real one in cmd/dmtcpctl; fakes in tests).
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Srun runs srun with args and the given environment, passing stdout and stderr
	// through, and returns its exit code (or an error when it could not start).
	Srun func(ctx context.Context, args, env []string) (int, error)
	// Executable is this program's path (what srun runs inside the job).
	Executable string
	// JobInfo returns scontrol show job -o fields of a job (BatchHost=...), or an error.
	JobInfo func(ctx context.Context, id string) (slurm.Record, error)
	Now     func() time.Time
}

const usage = `usage: dmtcpctl [--job ID] [--json] COMMAND [ARGS]

Commands:
  status                         state, coordinator, processes, interval, checkpoints
  checkpoint [--no-wait] [--timeout D]
                                 checkpoint now; wait until it is committed (default,
                                 at most D, default 30m) or only queue it
  wait TICKET [--timeout D]      wait for a queued checkpoint
  interval DURATION              set the periodic interval (900, 90s, 30m, 1h30m, 2d; 0: none)
  generations                    list the committed checkpoint generations
  ping                           which agent answers: job, step, restart count, pid
  history [JOBID] [--dir D]      the job's checkpoint timeline (generations, restores,
                                 requeues) from its checkpoint folder; works after the
                                 job ended (JOBID: default --job, else $SLURM_JOB_ID)

Options:
  --job ID        act on job ID from outside it (runs dmtcpctl in the job with srun --overlap)
  --socket PATH   the agent's socket (default $SLURM_DMTCP_CONTROL_SOCKET)
  --json          print the answer as JSON (errors too: {"error": {"code", "message"}})
  --step S        with --job: the step whose agent to reach (default: the batch step,
                  else the job's only srun --dmtcp step on its first node)
  --runtime-dir D with --job: the plugin's runtime_dir (default: from plugstack.conf, else /tmp)
  --dir D         with history: the job's checkpoint folder (default: checkpoint_dir of
                  plugstack.conf for this user, else ~/.slurm-dmtcp/JOBID)

Exit codes: 0 ok, 1 the agent refused or the operation failed, 2 usage,
3 agent not reachable, 4 checkpoint not finished within --timeout, 5 forbidden.
`

type opts struct {
	job, socket, runtimeDir, step string
	dir                           string // history: the job's checkpoint folder
	json, noWait, inside          bool
	timeout                       time.Duration
	cmd                           string
	args                          []string
}

type durFlag struct{ d *time.Duration }

func (f durFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

func (f durFlag) Set(s string) error {
	d, err := ctl.ParseDuration(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

func parse(args []string) (opts, error) {
	var o opts
	fs := flag.NewFlagSet("dmtcpctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.job, "job", "", "")
	fs.StringVar(&o.socket, "socket", "", "")
	fs.StringVar(&o.runtimeDir, "runtime-dir", "", "")
	fs.StringVar(&o.step, "step", "", "")
	fs.StringVar(&o.dir, "dir", "", "")
	fs.BoolVar(&o.json, "json", false, "")
	fs.BoolVar(&o.noWait, "no-wait", false, "")
	fs.BoolVar(&o.inside, "inside-job", false, "") // set by --job for the copy srun starts
	fs.Var(durFlag{&o.timeout}, "timeout", "")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return o, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) == 0 {
		return o, errors.New("no command")
	}
	o.cmd, o.args = pos[0], pos[1:]
	want := map[string]int{"status": 0, "checkpoint": 0, "wait": 1, "interval": 1, "generations": 0, "ping": 0, "history": 1}
	n, ok := want[o.cmd]
	switch {
	case !ok:
		return o, fmt.Errorf("unknown command %q: want status, checkpoint, wait, interval, generations, ping or history", o.cmd)
	case o.cmd == "history" && len(o.args) > 1:
		return o, fmt.Errorf("history takes at most one job id, got %d (%s)", len(o.args), strings.Join(o.args, " "))
	case o.cmd == "history" && len(o.args) == 1 && !isJobID(o.args[0]):
		return o, fmt.Errorf("history %q: want a job number", o.args[0])
	case o.cmd != "history" && len(o.args) != n:
		return o, fmt.Errorf("%s takes %d argument(s), got %d (%s)", o.cmd, n, len(o.args), strings.Join(o.args, " "))
	case o.job != "" && o.socket != "":
		return o, errors.New("--job and --socket exclude each other")
	case o.job != "" && !isJobID(o.job):
		return o, fmt.Errorf("--job %q: want a job number", o.job)
	case o.timeout > ctl.MaxWait:
		return o, fmt.Errorf("--timeout %s: at most %s", o.timeout, ctl.MaxWait)
	case o.step != "" && o.step != "batch" && !isJobID(o.step):
		return o, fmt.Errorf("--step %q: want batch or a step number", o.step)
	}
	return o, nil
}

func isJobID(s string) bool {
	n, err := strconv.ParseUint(s, 10, 32)
	return err == nil && n > 0 && strconv.FormatUint(n, 10) == s
}

// Main runs dmtcpctl and returns its exit code.
func Main(args []string, env Env) int {
	o, err := parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(env.Stdout, usage)
		return ExitOK
	}
	if err != nil {
		if o.json || slices.Contains(args, "--json") {
			printJSON(env.Stdout, errorJSON(codeUsage, err.Error()))
		}
		fmt.Fprintf(env.Stderr, "dmtcpctl: %v\n\n%s", err, usage)
		return ExitUsage
	}
	if o.cmd == "history" {
		return runHistory(o, env)
	}
	if o.job != "" && !o.inside {
		return viaSrun(o, args, env)
	}
	path := o.socket
	if o.inside {
		if path, err = findSocket(o, env); err != nil {
			return failLocal(o, env, codeUnreachable, err, ExitNoAgent)
		}
	}
	c, err := ctl.NewClient(path)
	if err == nil && path == "" {
		path = c.Path
	}
	if err != nil {
		return failLocal(o, env, codeUnreachable, err, ExitNoAgent)
	}
	return run(o, c, env)
}

func run(o opts, c *ctl.Client, env Env) int {
	wait := o.timeout
	if wait == 0 {
		wait = ctl.DefaultWait
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait+30*time.Second)
	defer cancel()
	var res any
	var err error
	switch o.cmd {
	case "ping":
		var h ctl.Hello
		err, res = c.Do(ctx, ctl.OpPing, nil, &h), &h
	case "status":
		var st ctl.Status
		err, res = c.Do(ctx, ctl.OpStatus, nil, &st), &st
	case "generations":
		var g ctl.Generations
		err, res = c.Do(ctx, ctl.OpGenerations, nil, &g), &g
	case "interval":
		d, perr := ctl.ParseDuration(o.args[0])
		if perr != nil {
			return failLocal(o, env, codeUsage, fmt.Errorf("interval: %w", perr), ExitUsage)
		}
		v := ctl.Duration(d)
		var r ctl.IntervalResult
		err, res = c.Do(ctx, ctl.OpInterval, ctl.IntervalArgs{Interval: &v}, &r), &r
	case "checkpoint":
		var r ctl.CheckpointResult
		err, res = c.Do(ctx, ctl.OpCheckpoint, ctl.CheckpointArgs{Wait: !o.noWait, Timeout: ctl.Duration(o.timeout)}, &r), &r
	case "wait":
		id, perr := strconv.ParseUint(o.args[0], 10, 64)
		if perr != nil || id == 0 {
			return failLocal(o, env, codeUsage, fmt.Errorf("wait %q: want a ticket number (from checkpoint --no-wait)", o.args[0]), ExitUsage)
		}
		var r ctl.CheckpointResult
		err, res = c.Do(ctx, ctl.OpWait, ctl.WaitArgs{Ticket: id, Timeout: ctl.Duration(o.timeout)}, &r), &r
	}
	if err != nil {
		return report(o, err, env)
	}
	if o.json {
		return printJSON(env.Stdout, res)
	}
	now := time.Now
	if env.Now != nil {
		now = env.Now
	}
	printHuman(env.Stdout, o.cmd, res, now())
	return ExitOK
}

// report prints an error and maps it to an exit code.
func report(o opts, err error, env Env) int {
	var pe *ctl.Error
	if !errors.As(err, &pe) {
		return failLocal(o, env, codeUnreachable, err, ExitNoAgent)
	}
	if o.json {
		printJSON(env.Stdout, map[string]any{"error": pe})
	}
	fmt.Fprintf(env.Stderr, "dmtcpctl: %s: %s\n", o.cmd, pe.Error())
	switch pe.Code {
	case ctl.CodeTimeout:
		if pe.Ticket != 0 {
			fmt.Fprintf(env.Stderr, "dmtcpctl: the checkpoint goes on; `dmtcpctl wait %d` waits for it\n", pe.Ticket)
		}
		return ExitTimeout
	case ctl.CodeForbidden:
		return ExitForbidden
	case ctl.CodeBadRequest, ctl.CodeUnknownOp, ctl.CodeUnsupportedVersion, ctl.CodeTooLarge:
		return ExitUsage
	}
	return ExitFailed
}

// findSocket, inside the job (started by --job through srun), finds the agent's socket:
// <runtime_dir>/slurm-dmtcp-<uid>[.<suffix>]/<job>.<step>/control.sock, the batch step's by
// default. Only folders of this user are looked in (a name another user planted under
// runtime_dir is passed over by the agent too), and no symbolic link is followed.
func findSocket(o opts, env Env) (string, error) {
	rt := o.runtimeDir
	if rt == "" {
		rt = runtimeDirFromPlugstack(env.Getenv("SLURM_CONF"))
	}
	bases := safepath.RunDirs(rt, os.Getuid())
	// The agent's runtime folder is <job>.batch or <job>.step-N (agent.Config.StepName).
	step := "batch"
	if o.step != "" && o.step != "batch" {
		step = "step-" + o.step
	}
	for _, b := range bases {
		if p := filepath.Join(b, o.job+"."+step, ctl.SocketName); ownSocket(p) {
			return p, nil
		}
	}
	if o.step == "" { // no batch agent: an srun --dmtcp step outside a batch job
		var m []string
		for _, b := range bases {
			found, _ := filepath.Glob(filepath.Join(b, o.job+".step-*", ctl.SocketName))
			for _, p := range found {
				if ownSocket(p) {
					m = append(m, p)
				}
			}
		}
		switch len(m) {
		case 1:
			return m[0], nil
		case 0:
		default:
			return "", fmt.Errorf("job %s has %d steps under DMTCP on this node: choose one with --step N", o.job, len(m))
		}
	}
	return "", fmt.Errorf("no control socket of job %s on this node in the runtime folders of uid %d under %s: is the job running with --dmtcp (and this its batch node)? (--runtime-dir sets the plugin's runtime_dir)", o.job, os.Getuid(), rt)
}

// ownSocket: p is a socket of this user in a real folder of this user (none a link).
func ownSocket(p string) bool {
	for _, x := range []string{filepath.Dir(p), p} {
		fi, err := os.Lstat(x)
		if err != nil {
			return false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || int(st.Uid) != os.Getuid() || fi.Mode()&os.ModeSymlink != 0 {
			return false
		}
	}
	return true
}

// runtimeDirFromPlugstack reads runtime_dir= from the slurm-dmtcp line of the plugstack.conf
// that slurm.conf names (the last one on the line, as the plugin does); "/tmp" (the plugin's
// default) when it cannot.
func runtimeDirFromPlugstack(slurmConf string) string {
	if rt := plugstackKey(slurmConf, "runtime_dir"); filepath.IsAbs(rt) {
		return rt
	}
	return "/tmp"
}

// plugstackKey reads key= from the slurm-dmtcp line of the plugstack.conf that slurm.conf
// names (the last one on the line, as the plugin does); "" when it cannot.
func plugstackKey(slurmConf, key string) string {
	if slurmConf == "" {
		slurmConf = "/etc/slurm/slurm.conf"
	}
	plug := filepath.Join(filepath.Dir(slurmConf), "plugstack.conf")
	if b, err := os.ReadFile(slurmConf); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok && strings.EqualFold(k, "PlugStackConfig") {
				plug = strings.TrimSpace(v)
			}
		}
	}
	if b, err := os.ReadFile(plug); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 || strings.HasPrefix(f[0], "#") || !strings.Contains(f[1], "spank_dmtcp") {
				continue
			}
			// As the plugin reads its arguments: a key given twice, the last one wins.
			val := ""
			for _, kv := range f[2:] {
				if v, ok := strings.CutPrefix(kv, key+"="); ok {
					val = v
				}
			}
			return val
		}
	}
	return ""
}

// viaSrun runs this same command inside job ID's allocation, on its batch host:
// srun --overlap --jobid ID -N1 -n1 --dmtcp=off dmtcpctl --inside-job ...
func viaSrun(o opts, args []string, env Env) int {
	if env.Srun == nil {
		return failLocal(o, env, codeUnreachable, errors.New("--job needs srun"), ExitNoAgent)
	}
	ctx := context.Background()
	srun := []string{"--overlap", "--jobid", o.job, "-N1", "-n1", "--quiet", "--dmtcp=off"}
	if env.JobInfo != nil {
		if info, err := env.JobInfo(ctx, o.job); err == nil && info.Value("BatchHost") != "" {
			srun = append(srun, "-w", info.Value("BatchHost"))
		}
	}
	srun = append(srun, env.Executable, "--inside-job")
	srun = append(srun, args...)
	code, err := env.Srun(ctx, srun, srunEnv(os.Environ()))
	if err != nil {
		return failLocal(o, env, codeUnreachable, fmt.Errorf("srun %s: %w", strings.Join(srun, " "), err), ExitNoAgent)
	}
	return code
}

// srunEnv drops what would put srun itself under DMTCP when dmtcpctl runs inside a
// --dmtcp job (LD_PRELOAD of libdmtcp, DMTCP_* and the job's SLURM_DMTCP_* variables).
func srunEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k == "LD_PRELOAD" || strings.HasPrefix(k, "DMTCP_") || strings.HasPrefix(k, "SLURM_DMTCP_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}
