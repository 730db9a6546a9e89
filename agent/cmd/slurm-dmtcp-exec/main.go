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
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// stopWait bounds the wait for the agent to commit the checkpoint that stopped the task;
// Slurm's own SIGKILL (KillWait after its SIGTERM) comes first on most clusters.
const stopWait = 5 * time.Minute

// failureWait bounds the wait for the agent's word on a coordinator that did not run, once
// dmtcp_launch has failed and nothing answers at the coordinator's address.
const failureWait = 2 * time.Second

func main() {
	// DMTCP's plugin of the tasks: without it (a broken install) the program still runs, with
	// SIGTERM ignored, and the task says so. Restored processes have it in their images.
	plugin := ""
	exe, err := os.Executable()
	if err == nil {
		plugin, err = launch.PluginBeside(exe)
	}
	path, argv, env, cerr := launch.Command(os.Args[1:], os.Environ(), plugin)
	if cerr != nil {
		os.Exit(launch.Fail(cerr))
	}
	if err != nil && os.Getenv(proto.EnvName(proto.KeyRestore)) == "" {
		fmt.Fprintf(os.Stderr, "slurm-dmtcp: %v\n", err)
	}
	for _, n := range launch.Notes(os.Environ()) {
		fmt.Fprintf(os.Stderr, "slurm-dmtcp: %s\n", n)
	}
	launch.RecordPid(env)
	code, stopped := launch.Supervise(path, argv, env, launch.RunDir(os.Environ()), stopWait)
	launch.RecordKilled(env, code, stopped)
	// The agent answers slurmstepd before its coordinator runs: when it never did, the
	// task says why rather than dmtcp_launch's words about a lost connection.
	if code != 0 && !stopped {
		if why := launch.CoordinatorFailure(env, failureWait); why != "" {
			os.Exit(launch.Fail(fmt.Errorf("cannot run %s under DMTCP: the step's coordinator did not start: %s", os.Getenv(proto.EnvArgv0), why)))
		}
	}
	os.Exit(code)
}
