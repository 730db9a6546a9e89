// Command slurm-dmtcp-exec is what a --dmtcp task execs first (the plugin put it in
// argv[0]): it runs dmtcp_launch joined to the step's coordinator (or dmtcp_restart when
// Slurm runs the job again), with the task's own command, arguments, environment, folder and
// stdio, as its child, and ends with the child's exit code (see launch.Supervise).
package main

import (
	"errors"
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

// restoreReplyWait bounds the wait for the agent's answer once a restored program failed:
// the agent first ends what is left of the computation (at most about 15 s).
const restoreReplyWait = time.Minute

// verifiedPoll is how often a restoring task looks for the agent's word on the generation.
const verifiedPoll = 2 * time.Millisecond

func main() {
	// Only outside a task (no SLURM_DMTCP_ARGV0): a task's own argument is never taken.
	if os.Getenv(proto.EnvArgv0) == "" && proto.AskedVersion(os.Args[1:]) {
		fmt.Println(proto.VersionLine("slurm-dmtcp-exec"))
		return
	}
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
	task := os.Environ()
	// The step ended by itself as Slurm stopped the run before: its work is done.
	if code, ended, err := launch.Ended(task); err != nil {
		os.Exit(launch.Fail(err))
	} else if ended {
		if err := launch.RecordExit(task, code, false); err != nil {
			fmt.Fprintf(os.Stderr, "slurm-dmtcp: %v\n", err)
		}
		os.Exit(code)
	}
	if launch.VerifiedLater(task) {
		// The agent verifies the generation while the task starts: it says which to restore.
		reply, err := launch.AwaitVerified(task, verifiedPoll)
		switch {
		case err != nil:
			os.Exit(launch.Fail(fmt.Errorf("cannot restore %s: %w", os.Getenv(proto.EnvArgv0), err)))
		case reply.GiveUp != "":
			os.Exit(launch.Fail(errors.New(reply.GiveUp)))
		}
		if task = launch.WithRestore(task, reply.Restore); reply.Fresh {
			task = launch.WithRestore(task, "")
		}
		if path, argv, env, err = launch.Command(os.Args[1:], task, plugin); err != nil {
			os.Exit(launch.Fail(err))
		}
	}
	code, stopped := launch.Supervise(path, argv, env, launch.RunDir(task), launch.Launches(task), stopWait)
	// A restored program that failed soon after its restore is restored again when the
	// agent says so (it says which generation, and tells the user in the job's error file).
	for attempt := 1; launch.RestoreRetried(task) && !stopped && launch.RestoreMayHaveFailed(code); {
		reply, err := launch.AwaitRestoreReply(task, attempt, code, restoreReplyWait)
		if err != nil || reply.Over {
			break
		}
		if reply.GiveUp != "" {
			fmt.Fprintf(os.Stderr, "slurm-dmtcp: %s\n", reply.GiveUp)
			break
		}
		attempt, task = reply.Attempt, launch.WithRestore(task, reply.Restore)
		if path, argv, env, err = launch.Command(os.Args[1:], task, plugin); err != nil {
			os.Exit(launch.Fail(err))
		}
		code, stopped = launch.Supervise(path, argv, env, launch.RunDir(task), launch.Launches(task), stopWait)
	}
	if err := launch.RecordExit(os.Environ(), code, stopped); err != nil {
		fmt.Fprintf(os.Stderr, "slurm-dmtcp: %v; a later run of the job restores the step instead of starting it again\n", err)
	}
	// The agent answers slurmstepd before its coordinator runs: when it never did, the
	// task says why rather than dmtcp_launch's words about a lost connection.
	if code != 0 && !stopped {
		if why := launch.CoordinatorFailure(env, failureWait); why != "" {
			os.Exit(launch.Fail(fmt.Errorf("cannot run %s under DMTCP: the step's coordinator did not start: %s", os.Getenv(proto.EnvArgv0), why)))
		}
	}
	os.Exit(code)
}
