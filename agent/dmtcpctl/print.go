package dmtcpctl

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	ctl "github.com/slurm-dmtcp/slurm-dmtcp/proto/control"
)

func printJSON(w io.Writer, v any) int {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		fmt.Fprintf(w, "{\"error\":%q}\n", err.Error())
		return ExitFailed
	}
	fmt.Fprintln(w, string(b))
	return ExitOK
}

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func secs(s int64) string {
	if s == 0 {
		return "none"
	}
	return (time.Duration(s) * time.Second).String()
}

func when(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := t.Sub(now).Round(time.Second)
	rel := "in " + d.String()
	if d < 0 {
		rel = (-d).String() + " ago"
	}
	return fmt.Sprintf("%s (%s)", t.Local().Format("2006-01-02 15:04:05"), rel)
}

func printGenerations(w io.Writer, g ctl.Generations) {
	if len(g.Generations) == 0 {
		fmt.Fprintf(w, "no checkpoint generations yet (keep %d)\n", g.Keep)
		return
	}
	fmt.Fprintf(w, "generations (newest last, keep %d):\n", g.Keep)
	for _, x := range g.Generations {
		if x.Error != "" {
			fmt.Fprintf(w, "  %6d  damaged: %s  %s\n", x.Number, x.Error, x.Path)
			continue
		}
		fmt.Fprintf(w, "  %6d  %s  %-10s  %10s  %s\n", x.Number, x.Time.Local().Format("2006-01-02 15:04:05"), x.Reason, human(x.Bytes), x.Path)
	}
}

func printHuman(w io.Writer, cmd string, res any, now time.Time) {
	switch r := res.(type) {
	case *ctl.Hello:
		fmt.Fprintf(w, "job %s step %s: agent pid %d, protocol %d, restart %d\n", r.JobID, r.Step, r.AgentPID, r.Protocol, r.RestartCount)
	case *ctl.Status:
		fmt.Fprintf(w, "job %s step %s (restart %d", r.JobID, r.Step, r.RestartCount)
		if r.RestoredGeneration > 0 {
			fmt.Fprintf(w, ", restored from generation %d", r.RestoredGeneration)
		}
		fmt.Fprintf(w, "): %s\n", r.State)
		procs := fmt.Sprintf("%d", r.Processes)
		if r.Processes < 0 {
			procs = "unknown (" + r.CoordinatorError + ")"
		}
		fmt.Fprintf(w, "coordinator:     %s:%d, processes under DMTCP: %s\n", r.Coordinator.Host, r.Coordinator.Port, procs)
		fmt.Fprintf(w, "interval:        %s (site minimum %s)\n", secs(r.IntervalS), secs(r.MinIntervalS))
		if r.NextCheckpoint != nil {
			fmt.Fprintf(w, "next checkpoint: %s\n", when(*r.NextCheckpoint, now))
		}
		if r.InProgress != nil {
			fmt.Fprintf(w, "in progress:     %s checkpoint since %s\n", r.InProgress.Reason, when(r.InProgress.Started, now))
		}
		if l := r.LastCheckpoint; l != nil {
			if l.OK {
				fmt.Fprintf(w, "last checkpoint: %s, %s, generation %d, %s, %.1fs\n", when(l.Time, now), l.Reason, l.Generation, human(l.Bytes), l.DurationS)
			} else {
				fmt.Fprintf(w, "last checkpoint: %s, %s, FAILED: %s\n", when(l.Time, now), l.Reason, l.Error)
			}
		}
		fmt.Fprintf(w, "checkpoints in:  %s\n", r.StepDir)
		printGenerations(w, r.Generations)
	case *ctl.Generations:
		printGenerations(w, *r)
	case *ctl.IntervalResult:
		fmt.Fprintf(w, "interval %s (was %s)", secs(r.IntervalS), secs(r.OldS))
		if r.NextCheckpoint != nil {
			fmt.Fprintf(w, "; next checkpoint %s", when(*r.NextCheckpoint, now))
		}
		fmt.Fprintln(w)
	case *ctl.CheckpointResult:
		switch r.State {
		case ctl.TicketDone:
			fmt.Fprintf(w, "checkpoint done: generation %d, %s, %.1fs (ticket %d)\n  %s\n", r.Generation, human(r.Bytes), r.DurationS, r.Ticket, r.Path)
		default:
			fmt.Fprintf(w, "checkpoint %s: ticket %d (dmtcpctl wait %d waits for it)\n", r.State, r.Ticket, r.Ticket)
		}
	default:
		fmt.Fprintf(w, "%s: %v\n", cmd, strings.TrimSpace(fmt.Sprint(res)))
	}
}
