package launch

import (
	"fmt"
	"strconv"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/atomicfile"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// DMTCPFailure is the exit status of dmtcp_launch and dmtcp_restart when DMTCP itself fails
// (DMTCP_FAIL_RC, 99 unless the environment says otherwise), and of a process that DMTCP
// ends on an internal error.
func DMTCPFailure(env []string) int {
	if n, err := strconv.Atoi(lookup(env, "DMTCP_FAIL_RC")); err == nil && n > 0 {
		return n
	}
	return 99
}

// EndedByItself reports whether a task's program, which ended with the shell-style status
// code, ended by itself: not killed by a signal (above 128), not failed inside DMTCP, not
// stopped by the agent.
func EndedByItself(env []string, code int) bool {
	return code >= 0 && code <= 128 && code != DMTCPFailure(env) && code != ExitStopped
}

// RestoreMayHaveFailed reports whether a restored program that ended with the shell-style
// status code may have died of its restore: any end but a clean exit or the agent's stop. A
// Python driver whose restored subprocess died of SIGSEGV ends with its own exit 1, not a
// signal. Whether it did is the agent's word: within its watch after the restore it
// restores again; after it (AwaitRestoreReply answers Over) the exit is the program's own.
func RestoreMayHaveFailed(code int) bool {
	return code != 0 && code != ExitStopped
}

// RecordExit writes proto.TaskExitedFile for this task in the step's runtime folder, with
// its exit status, when its program ended by itself and the agent asked for the report
// (proto.KeyReportExit), and the agent did not stop it (stopped, from Supervise). It is written as a temporary file renamed into place: the agent sees
// the whole record or none. Without it the agent does not take the step's end for a finish.
func RecordExit(env []string, code int, stopped bool) error {
	dir := lookup(env, proto.EnvName(proto.KeyRunDir))
	if dir == "" || stopped || lookup(env, proto.EnvName(proto.KeyReportExit)) != "1" || !EndedByItself(env, code) {
		return nil
	}
	id, err := strconv.Atoi(lookup(env, "SLURM_LOCALID"))
	if err != nil || id < 0 {
		return fmt.Errorf("task's SLURM_LOCALID is %q: cannot report its exit", lookup(env, "SLURM_LOCALID"))
	}
	if err := atomicfile.Write(dir, proto.TaskExitedFile(id), []byte(fmt.Sprintf("%d\n", code)), false); err != nil {
		return fmt.Errorf("report the task's exit: %w", err)
	}
	return nil
}

// Ended returns, when the step's tasks ended by themselves as Slurm stopped the run before
// (proto.KeyEnded), the exit status this task ended with then: the task ends with it and
// does not run its program again.
func Ended(env []string) (int, bool, error) {
	v := lookup(env, proto.EnvName(proto.KeyEnded))
	if v == "" {
		return 0, false, nil
	}
	codes, err := proto.ParseExits(v)
	if err != nil {
		return 0, false, fmt.Errorf("%s=%q: %w", proto.EnvName(proto.KeyEnded), v, err)
	}
	id, err := strconv.Atoi(lookup(env, "SLURM_LOCALID"))
	if err != nil || id < 0 || id >= len(codes) {
		return 0, false, fmt.Errorf("%s=%q holds no exit status for the task of SLURM_LOCALID %q", proto.EnvName(proto.KeyEnded), v, lookup(env, "SLURM_LOCALID"))
	}
	return codes[id], true, nil
}
