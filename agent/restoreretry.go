package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/atomicfile"
	"github.com/slurm-dmtcp/slurm-dmtcp/agent/generations"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// restoreAttempts bounds the attempts of one restore: the generation chosen, the same once
// more, then older verified ones.
const restoreAttempts = 4

// retryWait bounds, before a new attempt, the end of what is left of the failed one and
// the word of every task launcher of the node.
const retryWait = 10 * time.Second

// failedTasks says which restored programs of this node died abnormally ("" when none): the
// task launchers' proto.RestoreFailedFile.
func failedTasks(runDir string, tasks int) string {
	var out []string
	for id := 0; id < tasks; id++ {
		b, err := os.ReadFile(filepath.Join(runDir, proto.RestoreFailedFile(id)))
		if err != nil {
			continue
		}
		f, err := proto.ParseRestoreFailure(b)
		if err != nil {
			out = append(out, fmt.Sprintf("task %d: %v", id, err))
			continue
		}
		out = append(out, fmt.Sprintf("task %d %s", id, describeExit(f.Code)))
	}
	return strings.Join(out, ", ")
}

// describeExit puts a shell-style exit status in words.
func describeExit(code int) string {
	if code > 128 && code < 128+65 {
		return fmt.Sprintf("was killed by signal %d (%v, exit %d)", code-128, syscall.Signal(code-128), code)
	}
	if code == 99 {
		return "failed inside DMTCP (exit 99)"
	}
	return fmt.Sprintf("ended with exit %d", code)
}

// retryRestore ends what is left of a failed restore, waits for every task launcher of the
// node to report, and tells them what to restore next: the same generation once more, then
// older verified ones, at most restoreAttempts in all. It returns the generation of the next
// attempt, or "" when it gave up (the launchers then end, the step is not marked finished).
func (a *Agent) retryRestore(ctx context.Context, gen string, attempt int, why string) string {
	// A checkpoint the job asked for may be under way: the retry waits for its end.
	for a.Life.Phase() == Checkpointing && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if !a.Life.From(Restoring, Restoring, Running) {
		return "" // Slurm is stopping the step, or it ended: no other attempt
	}
	a.kill(ctx)
	wctx, cancel := context.WithTimeout(ctx, retryWait)
	defer cancel()
	for ctx.Err() == nil {
		st, err := a.Coord.Status(wctx)
		reported := 0
		for id := 0; id < a.Config.Tasks; id++ {
			if _, err := os.Stat(filepath.Join(a.Layout.RunDir, proto.RestoreFailedFile(id))); err == nil {
				reported++
			}
		}
		if (err == nil && st.NumPeers == 0 && reported == a.Config.Tasks) || wctx.Err() != nil {
			if reported < a.Config.Tasks {
				why = fmt.Sprintf("%s; %d of the %d tasks of this node did not wait for another attempt", why, a.Config.Tasks-reported, a.Config.Tasks)
				attempt = restoreAttempts // no retry without every task
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for id := 0; id < a.Config.Tasks; id++ {
		_ = os.Remove(filepath.Join(a.Layout.RunDir, proto.RestoreFailedFile(id)))
	}
	next, number := a.nextRestore(gen, attempt)
	cur := generationNumber(gen)
	if next == "" {
		msg := fmt.Sprintf("restore of generation %d failed (%s) after %d attempts; ending the step, which is not marked finished: "+
			"its generations stay for a later run (see agent.log)", cur, why, attempt)
		a.Log.WithField("attempt", attempt).Error(msg)
		a.progress("%s", msg)
		_ = a.Life.To(Killed)
		a.replyRestore(proto.RestoreReply{Attempt: attempt + 1, GiveUp: "the restore failed; see the lines above"})
		return ""
	}
	a.Log.WithField("attempt", attempt+1).WithField("generation", number).WithField("reason", why).Warn("restore failed: retrying")
	a.progress("restore of generation %d failed (%s): restoring generation %d, attempt %d of %d", cur, why, number, attempt+1, restoreAttempts)
	a.setRestored(next)
	a.Visible.restore(next, attempt+1)
	a.replyRestore(proto.RestoreReply{Attempt: attempt + 1, Restore: next})
	return next
}

// nextRestore is the generation of the attempt after attempt (which restored gen): gen once
// more after the first, then the newest verified one older than the one tried last, never
// one the step had finished past; "" when there is none or the attempts are used up.
func (a *Agent) nextRestore(gen string, attempt int) (string, int) {
	if attempt >= restoreAttempts {
		return "", 0
	}
	if attempt == 1 {
		return gen, generationNumber(gen)
	}
	gens, err := a.Store.List()
	if err != nil {
		return "", 0
	}
	done, _ := finishedAt(a.Layout.StepDir)
	cur := generationNumber(gen)
	for i := len(gens) - 1; i >= 0; i-- {
		g := gens[i]
		if g.Number >= cur || g.Number <= done {
			continue
		}
		if _, err := g.Verify(); err == nil {
			return g.Path, g.Number
		}
	}
	return "", 0
}

// generationNumber is the number of a generation folder (gen-000004: 4); 0 when it is not one.
func generationNumber(path string) int {
	var n int
	if _, err := fmt.Sscanf(filepath.Base(path), generations.GenDirName(0)[:4]+"%d", &n); err != nil {
		return 0
	}
	return n
}

// replyRestore answers the task launchers of the node (proto.RestoreReplyFile).
func (a *Agent) replyRestore(r proto.RestoreReply) {
	if err := atomicfile.Write(a.Layout.RunDir, proto.RestoreReplyFile, r.Marshal(), false); err != nil {
		a.Log.WithError(err).Warn("could not answer the task launchers about the restore")
	}
}
