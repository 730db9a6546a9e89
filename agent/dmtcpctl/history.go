package dmtcpctl

import (
	"errors"
	"fmt"
	"io"
	"os/user"
	"strings"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/history"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// Codes of errors dmtcpctl finds itself (the agent's are proto/control's).
const (
	codeUsage       = "usage"
	codeUnreachable = "unreachable"
	codeNotFound    = "not_found"
)

// errorJSON is the --json form of an error: {"error": {"code": ..., "message": ...}}, as the
// agent's errors are printed.
func errorJSON(code, msg string) map[string]any {
	return map[string]any{"error": map[string]string{"code": code, "message": msg}}
}

// failLocal reports an error found by dmtcpctl itself (not the agent's answer) and returns
// exit: on stderr, and with --json as JSON on stdout too.
func failLocal(o opts, env Env, code string, err error, exit int) int {
	if o.json {
		printJSON(env.Stdout, errorJSON(code, err.Error()))
	}
	fmt.Fprintf(env.Stderr, "dmtcpctl: %v\n", err)
	return exit
}

// defaultCheckpointDir is the plugin's checkpoint_dir= default.
const defaultCheckpointDir = "%h/.slurm-dmtcp/%j"

// HistoryResult is what history prints with --json.
type HistoryResult struct {
	JobID string             `json:"job_id"`
	Dir   string             `json:"dir"`
	Steps []history.Timeline `json:"steps"`
}

// runHistory prints the job's checkpoint timeline from its checkpoint folder (no agent needed:
// the job may have ended).
func runHistory(o opts, env Env) int {
	job := o.job
	if len(o.args) == 1 {
		job = o.args[0]
	}
	if job == "" {
		job = env.Getenv("SLURM_JOB_ID")
	}
	if job == "" && o.dir == "" {
		return failLocal(o, env, codeUsage, errors.New("history: which job? give JOBID (or --job, or run it inside the job)"), ExitUsage)
	}
	dir := o.dir
	if dir == "" {
		u, err := user.Current()
		if err != nil {
			return failLocal(o, env, codeNotFound, fmt.Errorf("history: who am I: %w", err), ExitFailed)
		}
		tmpl := plugstackKey(env.Getenv("SLURM_CONF"), "checkpoint_dir")
		if tmpl == "" {
			tmpl = defaultCheckpointDir
		}
		if dir, err = proto.ExpandCheckpointDir(tmpl, u, job); err != nil {
			return failLocal(o, env, codeUsage, fmt.Errorf("history: %w (give the job's folder with --dir)", err), ExitUsage)
		}
	}
	steps, err := history.JobTimelines(dir)
	if err != nil {
		what := "job " + job
		if job == "" {
			what = dir
		}
		return failLocal(o, env, codeNotFound, fmt.Errorf("history of %s: %w (another user's job, or checkpoint_dir elsewhere: --dir)", what, err), ExitFailed)
	}
	res := HistoryResult{JobID: job, Dir: dir, Steps: steps}
	if res.Steps == nil {
		res.Steps = []history.Timeline{}
	}
	if o.json {
		return printJSON(env.Stdout, res)
	}
	printHistory(env.Stdout, res)
	return ExitOK
}

// printHistory prints one table per step, oldest event first.
func printHistory(w io.Writer, r HistoryResult) {
	if len(r.Steps) == 0 {
		fmt.Fprintf(w, "job %s: no step folders in %s\n", r.JobID, r.Dir)
		return
	}
	for i, s := range r.Steps {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "job %s step %s: %s\n", r.JobID, s.Step, s.Dir)
		if len(s.Events) == 0 {
			fmt.Fprintln(w, "  no checkpoint yet")
		} else {
			fmt.Fprintf(w, "  %-19s  %3s  %-10s  %6s  %-10s  %10s  %s\n", "TIME", "RUN", "EVENT", "GEN", "KIND", "SIZE", "DETAIL")
		}
		for _, e := range s.Events {
			fmt.Fprintf(w, "  %-19s  %3d  %-10s  %6s  %-10s  %10s  %s\n", e.Time.Local().Format("2006-01-02 15:04:05"), e.Restart,
				e.Kind, genText(e.Generation), kindText(e), sizeText(e.Bytes), eventDetail(e))
		}
		if s.Skipped > 0 {
			fmt.Fprintf(w, "  (%d unreadable line(s) of %s/%s passed over)\n", s.Skipped, s.Dir, history.FileName)
		}
		for _, d := range s.Damaged {
			fmt.Fprintf(w, "  %s: manifest unreadable\n", d)
		}
	}
}

func genText(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func sizeText(n int64) string {
	if n == 0 {
		return ""
	}
	return human(n)
}

// kindText is a checkpoint's reason, a restore's (the restored checkpoint's) or a requeue's why.
func kindText(e history.Event) string {
	if e.Kind == history.KindRequeue {
		return e.Why
	}
	return e.Reason
}

func eventDetail(e history.Event) string {
	var parts []string
	switch e.Kind {
	case history.KindCheckpoint:
		if e.DurationS > 0 {
			parts = append(parts, fmt.Sprintf("%.1fs", e.DurationS))
		}
	case history.KindRestore:
		if e.Attempt > 1 {
			parts = append(parts, fmt.Sprintf("attempt %d", e.Attempt))
		}
	}
	if e.Node != "" {
		parts = append(parts, "on "+e.Node)
	}
	if e.Detail != "" {
		parts = append(parts, e.Detail)
	}
	if e.FromManifest {
		parts = append(parts, "(from its manifest)")
	}
	return strings.Join(parts, ", ")
}
