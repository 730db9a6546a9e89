package launch

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// ExitStopped is the exit code of a task that the agent checkpointed and stopped because
// Slurm was stopping the step (128 + SIGTERM, as if SIGTERM had ended it): srun and the batch
// script see the step fail, never succeed, when its work was only saved.
const ExitStopped = 128 + int(syscall.SIGTERM)

// Supervise runs the task's DMTCP command (from Command) as its child, with the task's
// stdio, and returns the exit code the task should end with. It stays the task's process
// for Slurm, so the agent can always reach the job's error output through it.
//
// Slurm's SIGTERM must not kill the task before the agent has checkpointed it: this process
// ignores it, and so does the child at first (inherited across exec), until DMTCP has loaded
// SigtermPlugin into the program, which gives the program back the default disposition and
// drops only Slurm's SIGTERM from then on (a restored program has the plugin in its image);
// the agent ends the computation itself. The child gets the signal mask this process
// started with (Go restores it in the child), and the default disposition of every signal
// caught here. Other signals reach the child from Slurm directly (they are sent to every
// process of the step); here they are caught and dropped, so that this process outlives the
// child.
//
// A task that joins the computation (joins: it starts dmtcp_launch) holds the step's fork
// lock from before its child starts until the program runs under DMTCP (join.go).
//
// When the agent stops the computation after a checkpoint (proto.StoppingFile in runDir),
// Supervise waits, at most stopWait, for the generation to be committed (proto.StoppedFile)
// before it returns ExitStopped and true; when that checkpoint found no process left
// (proto.StopFoundNothingFile), or the agent skipped it and left the program running
// (proto.StopSkippedFile), the program ended by itself: its own status, and false.
// A program that its user's own SIGTERM ended also ends with 143, and false.
func Supervise(path string, argv, env []string, runDir string, joins bool, stopWait time.Duration) (int, bool) {
	signal.Ignore(syscall.SIGTERM)
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2,
		syscall.SIGALRM, syscall.SIGCONT, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGPIPE)
	go func() {
		for range sigs {
		}
	}()
	// The child leads a process group of its own, as the task did before this process was
	// put in front of it: DMTCP records that group and restores it as it was.
	// If this process is killed (Slurm's SIGKILL after KillWait), the child goes with it:
	// reparented to init it would escape process tracking by descent (proctrack/linuxproc)
	// and run on outside the job. The parent-death signal belongs to the thread that
	// forked the child: this goroutine keeps that thread until the child is gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := &exec.Cmd{Path: path, Args: argv, Env: env, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}}
	var lock *joinLock
	if joins {
		var err error
		if lock, err = holdJoin(runDir, joinWait); err != nil {
			fmt.Fprintf(os.Stderr, "slurm-dmtcp: %v\n", err)
		}
	}
	if err := cmd.Start(); err != nil {
		lock.release()
		return Fail(err), false
	}
	released := make(chan struct{})
	go func() {
		defer close(released)
		lock.releaseWhenJoined(cmd.Process.Pid, joinedMax)
	}()
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return Fail(err), false
		}
	}
	<-released
	code := exitCode(cmd.ProcessState)
	if runDir == "" {
		return code, false
	}
	if _, err := os.Stat(filepath.Join(runDir, proto.StoppingFile)); err != nil {
		return code, false
	}
	deadline := time.Now().Add(stopWait)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(runDir, proto.StoppedFile)); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// That checkpoint found no process, or none was taken: nothing was stopped, the
	// program ended by itself.
	for _, own := range []string{proto.StopFoundNothingFile, proto.StopSkippedFile} {
		if _, err := os.Stat(filepath.Join(runDir, own)); err == nil {
			return code, false
		}
	}
	return ExitStopped, true
}

// exitCode is the shell's view of how a process ended: its status, or 128 + the signal.
func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// RunDir is the step's runtime folder as the plugin passed it to the task, or "".
func RunDir(env []string) string { return lookup(env, proto.EnvName(proto.KeyRunDir)) }
