// Package launch builds the command that runs one task under DMTCP. The plugin replaces a
// task's argv[0] by slurm-dmtcp-exec and passes the original argv[0] and the coordinator's
// address in the environment (see proto); slurm-dmtcp-exec turns that into dmtcp_launch.
package launch

import (
	"fmt"
	"os"
	"strings"

	"github.com/slurm-dmtcp/slurm-dmtcp/coordinator"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// ExitCannotLaunch is the exit code of a task that could not be started under DMTCP.
const ExitCannotLaunch = 125

// Command returns the program to exec, its argv and its environment, for a task whose
// arguments after argv[0] are args and whose environment is env ("K=V" entries).
func Command(args []string, env []string) (string, []string, []string, error) {
	get := func(k string) string {
		for i := len(env) - 1; i >= 0; i-- {
			if v, ok := strings.CutPrefix(env[i], k+"="); ok {
				return v
			}
		}
		return ""
	}
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
	argv := []string{inst.Launch, "-j", "-h", host, "-p", port}
	if d := get(proto.EnvPrefix + "CKPTDIR"); d != "" {
		argv = append(argv, "--ckptdir", d)
	}
	if d := get(proto.EnvPrefix + "TMPDIR"); d != "" {
		argv = append(argv, "--tmpdir", d)
	}
	argv = append(argv, argv0)
	argv = append(argv, args...)

	out := make([]string, 0, len(env))
	for _, kv := range env {
		if strings.HasPrefix(kv, proto.EnvArgv0+"=") || strings.HasPrefix(kv, proto.EnvError+"=") {
			continue // a nested srun must not see this task's argv[0]
		}
		out = append(out, kv)
	}
	return inst.Launch, argv, out, nil
}

// Fail prints why a task cannot start under DMTCP, on the task's own stderr (the job's
// error file), and returns the exit code to use.
func Fail(err error) int {
	fmt.Fprintf(os.Stderr, "slurm-dmtcp: %v\n", err)
	return ExitCannotLaunch
}
