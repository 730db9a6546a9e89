// Command slurm-dmtcp-exec is what a --dmtcp task execs first (the plugin put it in
// argv[0]): it runs dmtcp_launch joined to the step's coordinator (or dmtcp_restart when
// Slurm runs the job again), with the task's own command, arguments, environment, folder and
// stdio, as its child, and ends with the child's exit code (see launch.Supervise).
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/launch"
)

// stopWait bounds the wait for the agent to commit the checkpoint that stopped the task;
// Slurm's own SIGKILL (KillWait after its SIGTERM) comes first on most clusters.
const stopWait = 5 * time.Minute

// coordWait bounds the wait for the coordinator of a step on one node, started while
// slurmstepd started the tasks; the agent gives up on it after 20 s and says so.
const coordWait = 2 * time.Minute

func main() {
	env, err := launch.AwaitCoordinator(os.Environ(), coordWait)
	if err != nil {
		os.Exit(launch.Fail(err))
	}
	path, argv, env, err := launch.Command(os.Args[1:], env)
	if err != nil {
		os.Exit(launch.Fail(err))
	}
	for _, n := range launch.Notes(os.Environ()) {
		fmt.Fprintf(os.Stderr, "slurm-dmtcp: %s\n", n)
	}
	launch.RecordPid(env)
	os.Exit(launch.Supervise(path, argv, env, launch.RunDir(os.Environ()), stopWait))
}
