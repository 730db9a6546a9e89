package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/history"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto/manifest"
)

// Job is what the agent needs of its Slurm job (SlurmJob through scontrol; fakes in tests).
type Job interface {
	Info(ctx context.Context) (slurm.Job, error)
	Requeue(ctx context.Context) error
}

// ledgerFile records, in the step's folder, how many runs the job has had and how much run
// time they saved, for --dmtcp-continue.
const ledgerFile = "continuation"

// Ledger is the continuation record: runs that ended in a checkpoint before the time limit
// and the run time they saved (each run from its start to that checkpoint).
type Ledger struct {
	Runs  int
	Saved time.Duration
}

// ReadLedger reads the step's ledger; a missing file is an empty ledger.
func ReadLedger(stepDir string) (Ledger, error) {
	b, err := os.ReadFile(filepath.Join(stepDir, ledgerFile))
	if errors.Is(err, os.ErrNotExist) {
		return Ledger{}, nil
	}
	if err != nil {
		return Ledger{}, err
	}
	var l Ledger
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return Ledger{}, fmt.Errorf("%s: %s=%q is not a count", filepath.Join(stepDir, ledgerFile), k, v)
		}
		switch k {
		case "runs":
			l.Runs = int(n)
		case "saved_seconds":
			l.Saved = time.Duration(n) * time.Second
		}
	}
	return l, nil
}

// WriteLedger replaces the step's ledger atomically.
func WriteLedger(stepDir string, l Ledger) error {
	tmp := filepath.Join(stepDir, "."+ledgerFile+".tmp")
	body := fmt.Sprintf("runs=%d\nsaved_seconds=%d\n", l.Runs, int64(l.Saved/time.Second))
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(stepDir, ledgerFile))
}

// leadAt is when to take the checkpoint before the time limit: lead before the job's end,
// but never in the first half of the run, so that a lead as long as the time limit cannot
// requeue a job that did no work. ok is false when the job has no time limit.
func leadAt(info slurm.Job, lead time.Duration, started time.Time) (at time.Time, ok bool) {
	if info.EndTime.IsZero() || lead <= 0 {
		return time.Time{}, false
	}
	at = info.EndTime.Add(-lead)
	start := info.StartTime
	if start.IsZero() || start.After(started) {
		start = started
	}
	if half := start.Add(info.EndTime.Sub(start) / 2); at.Before(half) {
		at = half
	}
	return at, true
}

// continueDecision says whether the job may go on past its time limit in another run, and
// why not. run is this run's number (1 = first); saved includes this run's work.
func continueDecision(c Config, run int, saved time.Duration) (bool, string) {
	switch {
	case c.MaxRuns <= 1 && c.TotalTime == 0:
		return false, "continuation past the time limit was not asked for (--dmtcp-continue)"
	case run >= c.MaxRuns:
		return false, fmt.Sprintf("this was run %d of at most %d", run, c.MaxRuns)
	case c.TotalTime > 0 && saved >= c.TotalTime:
		return false, fmt.Sprintf("the runs so far saved %s, the %s asked for", saved.Round(time.Second), c.TotalTime)
	}
	return true, ""
}

// armLeadLater arms the timer of the checkpoint before the time limit once the step has run
// for AskEndTimeAfter: the channel gets the timer, or nil when there is none to arm (no lead
// time asked, no end time known, or the step ended first). nil without a lead time.
func (a *Agent) armLeadLater(ctx context.Context) <-chan *time.Timer {
	if a.Config.LeadTime <= 0 || a.Job == nil {
		return nil
	}
	c := make(chan *time.Timer, 1)
	go func() {
		select {
		case <-ctx.Done():
			c <- nil
		case <-time.After(a.AskEndTimeAfter):
			c <- a.armLead(ctx)
		}
	}()
	return c
}

// armLead returns a timer for the checkpoint before the time limit, or nil (armLeadLater
// calls it only with a lead time and a job).
func (a *Agent) armLead(ctx context.Context) *time.Timer {
	info, err := a.Job.Info(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // the step ended while Slurm was asked: nothing to schedule
		}
		a.Log.WithError(err).Warn("job's end time unknown: no checkpoint before the time limit")
		return nil
	}
	at, ok := leadAt(info, a.Config.LeadTime, a.Started)
	if !ok {
		a.Log.Debug("no time limit: no checkpoint before it")
		return nil
	}
	a.Log.WithFields(logrus.Fields{"end_time": info.EndTime.Format(time.RFC3339), "checkpoint_at": at.Format(time.RFC3339)}).
		Info("checkpoint before the time limit scheduled")
	return time.NewTimer(time.Until(at))
}

// beforeTimeLimit runs when the lead timer fires. If the end time moved later (the limit
// was raised), it returns how long to wait again. Otherwise it checkpoints and, when the
// job continues past its limit, requeues it; requeued says so.
func (a *Agent) beforeTimeLimit(ctx context.Context) (again time.Duration, requeued bool) {
	info, err := a.Job.Info(ctx)
	if err == nil {
		if at, ok := leadAt(info, a.Config.LeadTime, a.Started); ok && time.Until(at) > time.Second {
			a.Log.WithField("end_time", info.EndTime.Format(time.RFC3339)).Info("time limit moved: checkpoint rescheduled")
			return time.Until(at), false
		}
	}
	left := "unknown"
	if err == nil && !info.EndTime.IsZero() {
		left = time.Until(info.EndTime).Round(time.Second).String()
	}
	c, err := a.Checkpoint(ctx, manifest.ReasonTimeLimit)
	if err != nil {
		return 0, false // reported by Checkpoint; the SIGTERM at the limit tries again
	}
	ledger, err := ReadLedger(a.Layout.StepDir)
	if err != nil {
		a.Log.WithError(err).Warn("continuation ledger unreadable: starting a new one")
	}
	run := a.Config.RestartCount + 1
	saved := ledger.Saved + time.Since(a.Started)
	ok, why := continueDecision(a.Config, run, saved)
	if !ok {
		a.progress("time limit in %s: checkpoint taken; the job stops at its limit (%s)", left, why)
		return 0, false
	}
	if err := WriteLedger(a.Layout.StepDir, Ledger{Runs: ledger.Runs + 1, Saved: saved}); err != nil {
		a.Log.WithError(err).Error("continuation ledger")
		a.progress("time limit in %s: checkpoint taken, but the continuation record could not be written (%v); not requeueing", left, err)
		return 0, false
	}
	total := fmt.Sprintf("at most %d runs", a.Config.MaxRuns)
	if a.Config.TotalTime > 0 {
		total = fmt.Sprintf("%s of %s run time saved, %s", saved.Round(time.Second), a.Config.TotalTime, total)
	}
	if err := a.Job.Requeue(ctx); err != nil {
		a.Log.WithError(err).Error("requeue to continue past the time limit")
		a.progress("time limit in %s: checkpoint taken, but the requeue failed (%v); requeue the job by hand to resume", left, err)
		return 0, false
	}
	a.Log.WithFields(logrus.Fields{"run": run, "saved": saved.Round(time.Second).String()}).Info("requeued to continue past the time limit")
	a.progress("time limit in %s: checkpoint taken; job requeued to continue (run %d done, %s)", left, run, total)
	a.Visible.requeue(history.WhyContinue, c.Generation.Number, fmt.Sprintf("time limit in %s: run %d done, %s", left, run, total))
	return 0, true
}
