package launch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/atomicfile"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// RestoreRetried reports whether this task restores a generation under an agent that
// retries a failed restore (proto.KeyRestoreRetry).
func RestoreRetried(env []string) bool {
	return lookup(env, proto.EnvName(proto.KeyRestore)) != "" && lookup(env, proto.EnvName(proto.KeyRestoreRetry)) == "1"
}

// AwaitRestoreReply tells the agent that the restored program of this task (attempt
// attempt) died with code, and waits, at most wait, for its answer: a newer attempt with the
// generation to restore, the end of the retries, or that the restore's time is over (the
// task ends with its own status). No answer (the agent is gone) or Slurm stopping the step
// is an error: the task ends with its own status.
func AwaitRestoreReply(env []string, attempt, code int, wait time.Duration) (proto.RestoreReply, error) {
	dir := lookup(env, proto.EnvName(proto.KeyRunDir))
	id, err := strconv.Atoi(lookup(env, "SLURM_LOCALID"))
	if dir == "" || err != nil || id < 0 {
		return proto.RestoreReply{}, fmt.Errorf("no runtime folder or SLURM_LOCALID: cannot ask the agent")
	}
	reply := func() (proto.RestoreReply, bool) {
		b, err := os.ReadFile(filepath.Join(dir, proto.RestoreReplyFile))
		if err != nil {
			return proto.RestoreReply{}, false
		}
		r, err := proto.ParseRestoreReply(b)
		return r, err == nil && (r.Over || r.Attempt > attempt)
	}
	if r, ok := reply(); ok && r.Over {
		return r, nil
	}
	name := proto.RestoreFailedFile(id)
	if err := atomicfile.Write(dir, name, proto.RestoreFailure{Attempt: attempt, Code: code}.Marshal(), false); err != nil {
		return proto.RestoreReply{}, fmt.Errorf("tell the agent that the restore failed: %w", err)
	}
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if r, ok := reply(); ok {
			return r, nil
		}
		if _, err := os.Stat(filepath.Join(dir, proto.StoppingFile)); err == nil {
			return proto.RestoreReply{}, errors.New("Slurm is stopping the step")
		}
	}
	return proto.RestoreReply{}, fmt.Errorf("the agent did not answer within %s", wait)
}

// WithRestore is env with the generation to restore replaced by gen; none when gen is "".
func WithRestore(env []string, gen string) []string {
	key := proto.EnvName(proto.KeyRestore) + "="
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, key) {
			out = append(out, kv)
		}
	}
	if gen == "" {
		return out
	}
	return append(out, key+gen)
}

// VerifiedLater reports whether the agent verifies the generation to restore after its
// ready message (proto.KeyRestoreVerify): the task must wait for its word (AwaitVerified).
func VerifiedLater(env []string) bool {
	return lookup(env, proto.EnvName(proto.KeyRestore)) != "" && lookup(env, proto.EnvName(proto.KeyRestoreVerify)) == "1"
}

// AwaitVerified waits for the agent's word on the generation to restore (its reply of
// attempt 1): as long as the agent verifies it, which grows with the images' size, but no
// longer than the agent lives (its runtime folder) and Slurm lets the step run.
func AwaitVerified(env []string, every time.Duration) (proto.RestoreReply, error) {
	dir := lookup(env, proto.EnvName(proto.KeyRunDir))
	if dir == "" {
		return proto.RestoreReply{}, errors.New("no runtime folder: cannot hear from the agent")
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, proto.RestoreReplyFile)); err == nil {
			if r, err := proto.ParseRestoreReply(b); err == nil && r.Attempt >= 1 {
				return r, nil
			}
		}
		if _, err := os.Stat(filepath.Join(dir, proto.StoppingFile)); err == nil {
			return proto.RestoreReply{}, errors.New("Slurm stopped the step before its checkpoint was verified")
		}
		if _, err := os.Stat(dir); err != nil {
			return proto.RestoreReply{}, errors.New("the agent ended before it verified the checkpoint to restore")
		}
		time.Sleep(every)
	}
}
