package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/atomicfile"
	"github.com/slurm-dmtcp/slurm-dmtcp/agent/history"
)

// recoveriesFile records, in the step's folder, how many times the agent requeued the job
// because its computation died: a bound, so that a program that crashes by itself after
// every restore is not restored for ever.
const recoveriesFile = "recoveries"

// maxRecoveries bounds those requeues over the job's life.
const maxRecoveries = 3

// readRecoveries reads recoveriesFile: 0 when there is none, an error when it is not a count.
func readRecoveries(stepDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(stepDir, recoveriesFile))
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: %q is not a count", filepath.Join(stepDir, recoveriesFile), b)
	}
	return n, nil
}

// requeueToRestore answers a batch step whose computation died while it ran (why: how; a DMTCP
// failure, a signal, its launcher killed) and Slurm was not stopping it: with a generation
// to restore, the agent requeues the job, so that its next run restores it instead of the
// job ending FAILED, at most maxRecoveries times. It says what it did in the job's error
// file and returns whether the job was requeued.
func (a *Agent) requeueToRestore(ctx context.Context, why string) bool {
	if a.Job == nil || a.Config.Step != "batch" {
		return false
	}
	g, _, err := a.Store.NewestIntact()
	if err != nil {
		return false // nothing to restore: the job ends as it would without DMTCP
	}
	n, err := readRecoveries(a.Layout.StepDir)
	if err != nil {
		a.Log.WithError(err).Warn("automatic requeues unknown: not requeueing")
		return false
	}
	if n >= maxRecoveries {
		a.progress("the computation died (%s) after %d automatic requeues; the job is not requeued again: "+
			"scontrol requeue restores generation %d", why, n, g.Number)
		return false
	}
	if err := atomicfile.Write(a.Layout.StepDir, recoveriesFile, []byte(strconv.Itoa(n+1)+"\n"), true); err != nil {
		a.Log.WithError(err).Warn("record the automatic requeue: not requeueing")
		return false
	}
	if err := a.Job.Requeue(ctx); err != nil {
		a.Log.WithError(err).Warn("automatic requeue failed")
		a.progress("the computation died (%s); the requeue to restore generation %d failed (%v): "+
			"scontrol requeue %s resumes the job from it", why, g.Number, err, a.Config.JobID)
		return false
	}
	a.Log.WithField("generation", g.Number).WithField("reason", why).Warn("the computation died: job requeued to restore")
	a.Visible.requeue(history.WhyRecovery, g.Number, "the computation died: "+why)
	a.progress("the computation died (%s); job requeued to restore generation %d (automatic requeue %d of at most %d)",
		why, g.Number, n+1, maxRecoveries)
	return true
}
