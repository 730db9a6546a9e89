// Package launch builds the command that runs one task under DMTCP. The plugin replaces a
// task's argv[0] by slurm-dmtcp-exec and passes the original argv[0] and the coordinator's
// address in the environment (see proto); slurm-dmtcp-exec turns that into dmtcp_launch.
package launch

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/slurm-dmtcp/slurm-dmtcp/coordinator"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto/manifest"
)

// ExitCannotLaunch is the exit code of a task that could not be started under DMTCP.
const ExitCannotLaunch = 125

// lookup returns the value of key in env ("K=V" entries; the last one wins), or "".
func lookup(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}

// Command returns the program to exec, its argv and its environment, for a task whose
// arguments after argv[0] are args and whose environment is env ("K=V" entries). plugin is
// the path of SigtermPlugin for dmtcp_launch ("" = none); restored processes have it in
// their images already.
func Command(args []string, env []string, plugin string) (string, []string, []string, error) {
	get := func(k string) string { return lookup(env, k) }
	argv0 := get(proto.EnvArgv0)
	if argv0 == "" {
		return "", nil, nil, fmt.Errorf("%s is not set: slurm-dmtcp-exec runs only as a task started by the slurm-dmtcp plugin", proto.EnvArgv0)
	}
	if msg := get(proto.EnvError); msg != "" {
		return "", nil, nil, fmt.Errorf("cannot run %s under DMTCP: %s", argv0, msg)
	}
	host, port := get(proto.EnvCoordHost), get(proto.EnvCoordPort)
	if host == "" || port == "" {
		return "", nil, nil, fmt.Errorf("cannot run %s under DMTCP: the coordinator's address (%s, %s) is missing", argv0, proto.EnvCoordHost, proto.EnvCoordPort)
	}
	inst, err := coordinator.Find(get(proto.EnvDMTCPPrefix), get("PATH"))
	if err != nil {
		return "", nil, nil, fmt.Errorf("cannot run %s under DMTCP: %w", argv0, err)
	}
	// A step across nodes: each task rank has its own folder of images, in the checkpoint
	// folder and in each generation, so that it is restored from its own images wherever
	// it runs.
	rankDir := ""
	if get(proto.EnvName(proto.KeyPerRank)) == "1" {
		r, err := strconv.Atoi(get("SLURM_PROCID"))
		if err != nil || r < 0 {
			return "", nil, nil, fmt.Errorf("cannot run %s under DMTCP: a step across nodes needs the task's rank, and SLURM_PROCID is %q", argv0, get("SLURM_PROCID"))
		}
		rankDir = manifest.RankDir(r)
	}
	// Slurm runs the job again: restore the whole process tree of the generation (of this
	// rank's folder in it).
	gen := get(proto.EnvName(proto.KeyRestore))
	var images []string
	prog := inst.Launch
	if gen != "" {
		from := filepath.Join(gen, rankDir)
		images, _ = filepath.Glob(filepath.Join(from, "ckpt_*.dmtcp"))
		if len(images) == 0 {
			return "", nil, nil, fmt.Errorf("cannot restore %s: no checkpoint image in %s (was the step checkpointed with the same number of tasks?)", argv0, from)
		}
		prog = inst.Restart
	}
	argv := []string{prog, "-j", "-h", host, "-p", port}
	// On a restore too: without --ckptdir, restored processes write their next images beside
	// the ones they came from, into the generation itself.
	if d := get(proto.EnvName(proto.KeyCkptDir)); d != "" {
		if rankDir != "" {
			d = filepath.Join(d, rankDir)
			if err := os.MkdirAll(d, 0o700); err != nil {
				return "", nil, nil, fmt.Errorf("cannot run %s under DMTCP: checkpoint folder of rank: %w", argv0, err)
			}
		}
		argv = append(argv, "--ckptdir", d)
		if gen != "" {
			if err := placeFileCopies(filepath.Join(gen, rankDir), d); err != nil {
				return "", nil, nil, fmt.Errorf("cannot restore %s: %w", argv0, err)
			}
		}
	}
	if d := get(proto.EnvName(proto.KeyTmpDir)); d != "" {
		argv = append(argv, "--tmpdir", d)
	}
	if gen != "" {
		argv = append(argv, images...)
	} else {
		// Restored processes keep the setting they were launched with.
		switch get(proto.EnvName(proto.KeyCompress)) {
		case "on":
			argv = append(argv, "--gzip")
		case "off":
			argv = append(argv, "--no-gzip")
		}
	}

	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case proto.EnvArgv0, proto.EnvError, proto.EnvName(proto.KeyRestore), proto.EnvName(proto.KeyRestoreNote),
			proto.EnvName(proto.KeyPerRank), proto.EnvName(proto.KeyReportExit), proto.EnvName(proto.KeyRestoreRetry),
			proto.EnvName(proto.KeyRestoreVerify), proto.EnvName(proto.KeyEnded), EnvSigterm:
			continue // meant for this task only: a nested srun must not see them
		}
		out = append(out, kv)
	}
	if gen == "" {
		// Restored processes have their environment in their images.
		out = withMPIDefaults(out)
		if plugin != "" {
			var opts []string
			opts, out = withPlugin(plugin, out)
			argv = append(argv, opts...)
		}
		argv = append(argv, argv0)
		argv = append(argv, args...)
	}
	return prog, argv, out, nil
}

// Notes returns what the task should tell the user before it starts (restart decisions).
func Notes(env []string) []string {
	if v := lookup(env, proto.EnvName(proto.KeyRestoreNote)); v != "" {
		return strings.Split(v, " | ")
	}
	return nil
}

// RecordPid writes this task's pid into the step's runtime folder, once per step (the first
// task wins), so the agent can write progress lines to the job's error output.
func RecordPid(env []string) {
	dir := lookup(env, proto.EnvName(proto.KeyRunDir))
	if dir == "" {
		return
	}
	f, err := os.OpenFile(filepath.Join(dir, proto.TaskPidFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	f.Close()
	// After a restore the task's pid may not last (dmtcp_restart hands over to the restored
	// tree), so the path of a regular error file is kept too.
	if target, err := os.Readlink("/proc/self/fd/2"); err == nil && filepath.IsAbs(target) {
		if st, err := os.Stat(target); err == nil && st.Mode().IsRegular() {
			_ = os.WriteFile(filepath.Join(dir, proto.TaskStderrFile), []byte(target+"\n"), 0o600)
		}
	}
}

// Fail prints why a task cannot start under DMTCP, on the task's own stderr (the job's
// error file), and returns the exit code to use.
func Fail(err error) int {
	fmt.Fprintf(os.Stderr, "slurm-dmtcp: %v\n", err)
	return ExitCannotLaunch
}

// CoordinatorFailure says why the step's coordinator never ran, when that is why the task's
// dmtcp_launch failed: the agent's word in the runtime folder (proto.CoordFailedFile), read
// at once, or waited for (at most wait) when nothing listens at the coordinator's address.
// "" when the coordinator answers, or the agent said nothing: the task's own exit code
// stands.
func CoordinatorFailure(env []string, wait time.Duration) string {
	runDir := lookup(env, proto.EnvName(proto.KeyRunDir))
	host, port := lookup(env, proto.EnvCoordHost), lookup(env, proto.EnvCoordPort)
	if runDir == "" || host == "" || port == "" {
		return ""
	}
	note := func() string {
		b, err := os.ReadFile(filepath.Join(runDir, proto.CoordFailedFile))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	if msg := note(); msg != "" {
		return msg
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), time.Second)
	if err == nil {
		conn.Close()
		return "" // it answers: the task failed on its own
	}
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if msg := note(); msg != "" {
			return msg
		}
	}
	return ""
}
