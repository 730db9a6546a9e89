package agent

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/generations"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// ErrNoCheckpoint is returned by restorePlan when policy says a restarted job without a
// verified generation fails instead of starting from the top.
var ErrNoCheckpoint = errors.New("no verified checkpoint generation")

// restorePlan decides, when Slurm runs the job again, which generation the tasks restore:
// the newest one that verifies against its manifest, newer than the step's last finish.
// Damaged newer ones are skipped with a note for the user; with none verified the job starts
// from the top, or fails when cfg.FailWithoutCheckpoint says so.
func restorePlan(cfg Config, store *generations.Store, stepDir string, log *logrus.Entry) ([]proto.KV, error) {
	if cfg.RestartCount == 0 {
		return nil, nil
	}
	note := func(notes []string) []proto.KV {
		return []proto.KV{{Key: proto.KeyRestoreNote, Value: strings.Join(notes, " | ")}}
	}
	done, ferr := finishedAt(stepDir)
	if ferr != nil {
		log.WithError(ferr).Warn("finished marker unreadable: not taken for a finish")
	}
	g, skipped, err := store.NewestVerified()
	if done >= 0 && (err != nil || g.Number <= done) {
		log.WithField("generation", g.Number).Info("the step finished in an earlier run: starting it from the top")
		return note([]string{fmt.Sprintf("restart %d: this step finished in an earlier run; starting it again from the top", cfg.RestartCount)}), nil
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
	return append(note(notes), proto.KV{Key: proto.KeyRestore, Value: g.Path}), nil
}
