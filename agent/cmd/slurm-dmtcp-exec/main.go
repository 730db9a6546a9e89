// Command slurm-dmtcp-exec is what a --dmtcp task execs first (the plugin put it in
// argv[0]): it replaces itself with dmtcp_launch joined to the step's coordinator, running
// the task's own command with its own arguments, environment, folder and stdio.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/launch"
)

func main() {
	path, argv, env, err := launch.Command(os.Args[1:], os.Environ())
	if err != nil {
		os.Exit(launch.Fail(err))
	}
	for _, n := range launch.Notes(os.Environ()) {
		fmt.Fprintf(os.Stderr, "slurm-dmtcp: %s\n", n)
	}
	launch.RecordPid(os.Environ())
	// Slurm's SIGTERM (requeue, preemption, time limit, scancel) must not kill the task before
	// the agent has checkpointed it: the task starts with SIGTERM ignored (kept across exec);
	// the agent ends the computation itself once the checkpoint is safe.
	signal.Ignore(syscall.SIGTERM)
	err = syscall.Exec(path, argv, env)
	os.Exit(launch.Fail(fmt.Errorf("exec %s: %w", path, err)))
}
