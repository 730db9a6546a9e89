package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/generations"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// finishedFile marks, in the step's folder, that the step's tasks ended by themselves (not
// stopped by Slurm). It holds the newest generation number at that time: a later run of the
// job starts the step from the top and never restores those older generations.
const finishedFile = "finished"

// markFinished records that the step ended by itself.
func (a *Agent) markFinished() {
	newest := 0
	if gens, err := a.Store.List(); err == nil && len(gens) > 0 {
		newest = gens[len(gens)-1].Number
	}
	body := fmt.Sprintf("generation=%d\ntime=%s\n", newest, time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile(filepath.Join(a.Layout.StepDir, finishedFile), []byte(body), 0o600); err != nil {
		a.Log.WithError(err).Warn("could not record that the step finished")
	}
}

// finishedAt returns the newest generation number when the step last finished by itself,
// or -1 if it never did.
func finishedAt(stepDir string) int {
	b, err := os.ReadFile(filepath.Join(stepDir, finishedFile))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "generation="); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				return n
			}
		}
	}
	return 0
}

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
	done := finishedAt(stepDir)
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
