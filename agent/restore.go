package agent

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/generations"
	"github.com/slurm-dmtcp/slurm-dmtcp/agent/history"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// ErrNoCheckpoint is returned by restorePlan when policy says a restarted job without a
// verified generation fails instead of starting from the top.
var ErrNoCheckpoint = errors.New("no verified checkpoint generation")

// restorePlan decides, when Slurm runs the job again, which generation the tasks restore:
// the newest one that verifies against its manifest, newer than the step's last finish.
// Damaged newer ones are skipped with a note for the user; with none verified the job starts
// from the top, or fails when cfg.FailWithoutCheckpoint says so. With later, the images are
// not hashed here (only Generation.Check): the agent verifies them after its ready message
// (verifyRestore), and the task launchers wait for its word (proto.KeyRestoreVerify).
func restorePlan(cfg Config, store *generations.Store, stepDir string, log *logrus.Entry, later bool) ([]proto.KV, error) {
	if cfg.RestartCount == 0 {
		return nil, nil
	}
	note := func(notes []string) []proto.KV {
		return []proto.KV{{Key: proto.KeyRestoreNote, Value: strings.Join(notes, " | ")}}
	}
	fin, ferr := readFinish(stepDir)
	if ferr != nil {
		log.WithError(ferr).Warn("finished marker unreadable: not taken for a finish")
	}
	if fin.StopRun >= 0 && fin.StopRun == cfg.RestartCount-1 && len(fin.Exits) == cfg.Tasks {
		// Slurm stopped the run before as the step's tasks ended by themselves: its work
		// is done, and Slurm's requeue is no reason to do it again.
		codes := proto.FormatExits(fin.Exits)
		log.WithField("exits", codes).Info("the step ended by itself as Slurm stopped the run before: not running it again")
		msg := fmt.Sprintf("restart %d: this step ended by itself as Slurm stopped the run before (exit %s); it is not run again",
			cfg.RestartCount, codes)
		return append(note([]string{msg}), proto.KV{Key: proto.KeyEnded, Value: codes}), nil
	}
	done := fin.Generation
	find := store.NewestVerified
	if later {
		find = store.NewestIntact
	}
	g, skipped, err := find()
	if done >= 0 && (err != nil || g.Number <= done) {
		log.WithField("generation", g.Number).Info("the step finished in an earlier run: starting it from the top")
		msg := fmt.Sprintf("restart %d: this step finished in an earlier run; starting it again from the top", cfg.RestartCount)
		if restoredInRun(stepDir, cfg.RestartCount-1) {
			msg += graceRequeueHint
		}
		return note([]string{msg}), nil
	}
	var notes []string
	for _, sk := range skipped {
		log.WithError(sk.Err).WithField("generation", sk.Generation.Number).Warn("generation damaged: falling back")
		notes = append(notes, fmt.Sprintf("generation %d is damaged (%v); falling back to an older one", sk.Generation.Number, sk.Err))
	}
	if err != nil {
		if cfg.FailWithoutCheckpoint {
			log.WithError(err).Error("no verified generation: failing the job (on_no_checkpoint=fail)")
			return nil, fmt.Errorf("restart %d: %w in %s (%v); this cluster fails such jobs instead of starting them from the top (plugstack.conf on_no_checkpoint=fail)",
				cfg.RestartCount, ErrNoCheckpoint, stepDir, err)
		}
		log.WithError(err).Warn("no verified generation: the job starts from the top")
		notes = append(notes, fmt.Sprintf("restart %d: no verified checkpoint generation (%v); starting from the top", cfg.RestartCount, err))
		return note(notes), nil
	}
	log.WithFields(logrus.Fields{"generation": g.Number, "taken": g.Time.Format(time.RFC3339)}).Info("restoring")
	notes = append(notes, fmt.Sprintf("restart %d: restoring generation %d (checkpoint of %s, %s)",
		cfg.RestartCount, g.Number, g.Time.Format(time.RFC3339), g.Reason))
	kvs := append(note(notes), proto.KV{Key: proto.KeyRestore, Value: g.Path})
	if later {
		kvs = append(kvs, proto.KV{Key: proto.KeyRestoreVerify, Value: "1"})
	}
	return kvs, nil
}

// graceRequeueHint follows the "finished in an earlier run" line when the run before this
// one was itself a restore that then ended: the likeliest cause is Slurm's own requeue after
// a preemption (docs/admin.md, Slurm 24.05 and later, preemption with GraceTime).
const graceRequeueHint = " (the run before restored a checkpoint and ended; if no one requeued the job since, " +
	"Slurm did: since 24.05 a job requeued at the end of its preemption grace time is requeued once more " +
	"when its next run ends)"

// restoredInRun says whether the step's history holds a restore by run restart (its
// restart count). An unreadable history says no.
func restoredInRun(stepDir string, restart int) bool {
	if restart < 1 {
		return false
	}
	evs, _, err := history.Read(stepDir)
	if err != nil {
		return false
	}
	for _, e := range evs {
		if e.Kind == history.KindRestore && e.Restart == restart {
			return true
		}
	}
	return false
}

// verifyRestore verifies, after the ready message, the generation gen that restorePlan chose
// without hashing it, and tells the task launchers what to restore (proto.KeyRestoreVerify):
// gen, or the newest older one that verifies (each damaged one a line in the job's error
// output), or to start from the top, or, when the site says on_no_checkpoint=fail, that the
// step fails. It returns the generation restored, "" when none is.
func (a *Agent) verifyRestore(gen string) string {
	start := time.Now()
	done, _ := finishedAt(a.Layout.StepDir)
	cur := generationNumber(gen)
	gens, err := a.Store.List()
	if err != nil {
		a.Log.WithError(err).Error("generations")
	}
	for i := len(gens) - 1; i >= 0; i-- {
		g := gens[i]
		if g.Number > cur || g.Number <= done {
			continue
		}
		if _, err := g.Verify(); err != nil {
			a.Log.WithError(err).WithField("generation", g.Number).Warn("generation damaged: falling back")
			a.progress("generation %d is damaged (%v); falling back to an older one", g.Number, err)
			continue
		}
		a.Log.WithFields(logrus.Fields{"generation": g.Number, "bytes": g.Size,
			"duration": time.Since(start).Round(time.Millisecond).String()}).Info("generation verified: restoring it")
		if g.Number != cur {
			a.progress("restart %d: restoring generation %d (checkpoint of %s, %s)", a.Config.RestartCount, g.Number,
				g.Time.Format(time.RFC3339), g.Reason)
		}
		a.setRestored(g.Path)
		a.Visible.restore(g.Path, 1)
		a.replyRestore(proto.RestoreReply{Attempt: 1, Restore: g.Path})
		return g.Path
	}
	if a.Config.FailWithoutCheckpoint {
		msg := fmt.Sprintf("restart %d: %v in %s; this cluster fails such jobs instead of starting them from the top (plugstack.conf on_no_checkpoint=fail)",
			a.Config.RestartCount, ErrNoCheckpoint, a.Layout.StepDir)
		a.Log.Error(msg)
		_ = a.Life.To(Killed)
		a.replyRestore(proto.RestoreReply{Attempt: 1, GiveUp: msg})
		return ""
	}
	a.Log.Warn("no verified generation: the step starts from the top")
	a.progress("restart %d: no verified checkpoint generation; starting from the top", a.Config.RestartCount)
	a.setRestored("")
	a.replyRestore(proto.RestoreReply{Attempt: 1, Fresh: true})
	return ""
}
