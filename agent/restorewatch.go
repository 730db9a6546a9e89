package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// restoreWait bounds a restore: DMTCP waits for ever when one of the restored processes
// never connects (a rank whose restore failed on another node, say), and the job would stay
// RUNNING, doing nothing, until its time limit. Two minutes, plus a second for every 20 MiB
// of images to read.
func restoreWait(bytes int64) time.Duration {
	return 2*time.Minute + time.Duration(bytes/(20<<20))*time.Second
}

// restoreImages counts the images of a generation folder (those of every rank-R/ folder
// too) and their bytes.
func restoreImages(gen string) (n int, bytes int64) {
	for _, pattern := range []string{"ckpt_*.dmtcp", "rank-*/ckpt_*.dmtcp"} {
		files, _ := filepath.Glob(filepath.Join(gen, pattern))
		for _, f := range files {
			if st, err := os.Stat(f); err == nil {
				n++
				bytes += st.Size()
			}
		}
	}
	return n, bytes
}

// restoring is the generation the tasks restore, from the ready message's pairs; "" when
// they start from the top.
func restoring(extra []proto.KV) string {
	for _, kv := range extra {
		if kv.Key == proto.KeyRestore {
			return kv.Value
		}
	}
	return ""
}

// setRestored records gen (a generation folder; "" none) as the one the step restores.
func (a *Agent) setRestored(gen string) { a.restored.Store(int64(generationNumber(gen))) }

// restoredGeneration is the number of the generation the step restores, 0 when none.
func (a *Agent) restoredGeneration() int { return int(a.restored.Load()) }

// verifyLater reports whether the ready message's pairs leave the generation to restore to
// be verified after it (proto.KeyRestoreVerify).
func verifyLater(extra []proto.KV) bool {
	for _, kv := range extra {
		if kv.Key == proto.KeyRestoreVerify {
			return kv.Value == "1"
		}
	}
	return false
}

// restoreSettle: a restored program that fails (a signal, DMTCP's failure code, any exit but 0)
// within this time after its restore completed is taken for a failed restore.
const restoreSettle = 30 * time.Second

// restoreSettle is Agent.RestoreSettle, or the default.
func (a *Agent) restoreSettle() time.Duration {
	if a.RestoreSettle > 0 {
		return a.RestoreSettle
	}
	return restoreSettle
}

// watchRestore waits until the processes of generation gen run again under the
// coordinator. If that does not happen within wait (restoreWait when 0), it says so in the
// job's error output and ends the computation, so that the step does not hang. On a step on
// one node a restore that fails (never completes, or a restored program dies abnormally
// within restoreSettle) is retried (retryRestore), each attempt one line in the job's error
// output. It gives up quietly when ctx ends (the step is over).
func (a *Agent) watchRestore(ctx context.Context, gen string, wait time.Duration) {
	retry := !a.Config.AcrossNodes()
	for attempt := 1; ; attempt++ {
		why := a.awaitRestore(ctx, gen, wait, attempt, retry)
		if why == "" || !retry || ctx.Err() != nil {
			return
		}
		if gen = a.retryRestore(ctx, gen, attempt, why); gen == "" {
			return
		}
	}
}

// awaitRestore watches one attempt of a restore; it returns why it failed, or "".
func (a *Agent) awaitRestore(ctx context.Context, gen string, wait time.Duration, attempt int, retry bool) string {
	want, bytes := restoreImages(gen)
	if want == 0 {
		return ""
	}
	if wait == 0 {
		wait = restoreWait(bytes)
	}
	log := a.Log.WithFields(logrus.Fields{"generation_path": gen, "attempt": attempt})
	start := time.Now()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	var complete time.Time
	peers := 0
	for {
		if retry {
			if why := failedTasks(a.Layout.RunDir, a.Config.Tasks); why != "" {
				log.WithField("reason", why).Warn("restore failed")
				return why
			}
		}
		if complete.IsZero() {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			st, err := a.Coord.Status(sctx)
			cancel()
			// The coordinator says running only once every restarting process has
			// connected and the computation goes on (some may have ended since).
			if err == nil {
				peers = st.NumPeers
				if st.Running && st.NumPeers > 0 {
					complete = time.Now()
					log.WithField("processes", st.NumPeers).WithField("duration", time.Since(start).Round(time.Millisecond).String()).Info("restore complete: the processes run again")
					a.Life.From(Running, Restoring)
					a.flushProgress() // lines of the restore's start, before the task ran
					if !retry {
						return ""
					}
					// No periodic checkpoint while a restored program may still die of its
					// restore: it would save a computation about to fail as the newest
					// generation. A checkpoint the job asks for is taken.
					a.settling.Store(true)
					defer a.settling.Store(false)
					deadline.Stop()
				}
			}
		} else if time.Since(complete) > a.restoreSettle() {
			a.replyRestore(proto.RestoreReply{Attempt: attempt, Over: true})
			return ""
		}
		select {
		case <-ctx.Done():
			return ""
		case <-deadline.C:
			log.WithField("connected", peers).WithField("images", want).Error("restore did not complete: ending the computation")
			a.progress("restore did not complete within %s: %d of the %d restored processes reached the coordinator; ending it so the job does not hang (see agent.log)",
				wait.Round(time.Second), peers, want)
			a.kill(ctx)
			return fmt.Sprintf("the restore did not complete within %s", wait.Round(time.Second))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
