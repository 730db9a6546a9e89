// Package agent is the per-job (or per-step) process that slurm-dmtcp runs as the job's user:
// it starts the job's dmtcp_coordinator, tells the plugin where it is, takes checkpoints,
// and stops everything it started when the step ends.
package agent

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/cache"
)

// Config is what the plugin passes on the agent's command line.
type Config struct {
	Protocol     int
	JobID        string
	Step         string // "batch" or the step number
	RestartCount int
	NodeID       int
	Nodes        int
	Tasks        int
	StepTasks    int           // tasks of the whole step, on every node; 0: not known
	Interval     time.Duration // 0: no periodic checkpoints
	MinInterval  time.Duration // site's min_interval: the shortest interval a control request may set
	LeadTime     time.Duration // checkpoint this long before the time limit; 0: none
	MaxRuns      int           // runs in all when continuing past the time limit; 1: no continuation
	TotalTime    time.Duration // run time wanted over all runs; 0: bounded by MaxRuns only
	Compress     bool          // gzip checkpoint images
	// FailWithoutCheckpoint: a restarted job with no verified generation fails instead of
	// starting from the top.
	FailWithoutCheckpoint bool
	Keep                  int
	CkptTemplate          string // checkpoint_dir= of plugstack.conf
	RuntimeDir            string
	DMTCPPrefix           string
	// NodeprobeCache is the node probe's facts cache, read-only ("" = collect facts live).
	NodeprobeCache string
	// OnIncompatible is what to do when the checkpoint to restore cannot be restored on
	// this node: OnIncompatibleRequeue or OnIncompatibleFail.
	OnIncompatible string
}

// ErrUsage marks command-line errors (exit code 2).
var ErrUsage = errors.New("usage")

// ParseArgs reads the agent's flags. Errors name the flag, the value and the accepted form.
func ParseArgs(args []string, stderr io.Writer) (Config, error) {
	var c Config
	var interval, minInterval, lead, total int64
	var onNoCkpt string
	fs := flag.NewFlagSet("slurm-dmtcp-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.Protocol, "protocol", 0, "protocol version the plugin speaks (1)")
	fs.StringVar(&c.JobID, "job-id", "", "Slurm job id")
	fs.StringVar(&c.Step, "step", "", `step: "batch" or a step number`)
	fs.IntVar(&c.RestartCount, "restart-count", 0, "SLURM_RESTART_COUNT of this run")
	fs.IntVar(&c.NodeID, "node-id", 0, "relative id of this node in the step")
	fs.IntVar(&c.Nodes, "nodes", 1, "nodes in the step")
	fs.IntVar(&c.Tasks, "tasks", 1, "tasks of the step on this node")
	fs.IntVar(&c.StepTasks, "step-tasks", 0, "tasks of the whole step, on every node (0: not known)")
	fs.Int64Var(&interval, "interval", 0, "seconds between periodic checkpoints, 0 for none")
	fs.Int64Var(&minInterval, "min-interval", 60, "site's shortest interval in seconds (plugstack.conf min_interval)")
	fs.Int64Var(&lead, "lead-time", 0, "seconds before the time limit for a last checkpoint, 0 for none")
	fs.IntVar(&c.MaxRuns, "max-runs", 1, "runs in all when continuing past the time limit (1: no continuation)")
	fs.Int64Var(&total, "total-time", 0, "seconds of run time wanted over all runs, 0 for no bound but --max-runs")
	fs.BoolVar(&c.Compress, "compress", false, "gzip checkpoint images")
	fs.StringVar(&onNoCkpt, "on-no-checkpoint", "restart", `a restarted job without a verified checkpoint: "restart" from the top or "fail"`)
	fs.IntVar(&c.Keep, "keep", 2, "verified checkpoint generations to keep")
	fs.StringVar(&c.CkptTemplate, "checkpoint-dir", "%h/.slurm-dmtcp/%j", "checkpoint folder template")
	fs.StringVar(&c.RuntimeDir, "runtime-dir", "/tmp", "parent of the step's private runtime folder")
	fs.StringVar(&c.DMTCPPrefix, "dmtcp-prefix", "", "DMTCP install prefix (empty: PATH, then /opt/dmtcp)")
	fs.StringVar(&c.NodeprobeCache, "nodeprobe-cache", cache.DefaultPath, "node probe facts cache (read-only; empty: collect facts live)")
	fs.StringVar(&c.OnIncompatible, "on-incompatible", OnIncompatibleRequeue, "checkpoint incompatible with this node: requeue or fail")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	c.Interval = time.Duration(interval) * time.Second
	c.MinInterval = time.Duration(minInterval) * time.Second
	c.LeadTime = time.Duration(lead) * time.Second
	c.TotalTime = time.Duration(total) * time.Second
	c.FailWithoutCheckpoint = onNoCkpt == "fail"
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	case c.Protocol != 1:
		return c, fmt.Errorf("%w: --protocol=%d: this agent speaks protocol 1; plugin and agent come from different releases", ErrUsage, c.Protocol)
	case !isNumber(c.JobID):
		return c, fmt.Errorf("%w: --job-id=%q: want a job number", ErrUsage, c.JobID)
	case c.Step != "batch" && !isNumber(c.Step):
		return c, fmt.Errorf("%w: --step=%q: want \"batch\" or a step number", ErrUsage, c.Step)
	case interval < 0:
		return c, fmt.Errorf("%w: --interval=%d: want seconds >= 0", ErrUsage, interval)
	case minInterval < 0:
		return c, fmt.Errorf("%w: --min-interval=%d: want seconds >= 0", ErrUsage, minInterval)
	case lead < 0:
		return c, fmt.Errorf("%w: --lead-time=%d: want seconds >= 0", ErrUsage, lead)
	case total < 0:
		return c, fmt.Errorf("%w: --total-time=%d: want seconds >= 0", ErrUsage, total)
	case c.Tasks < 1:
		return c, fmt.Errorf("%w: --tasks=%d: want 1 or more (tasks of the step on this node)", ErrUsage, c.Tasks)
	case c.MaxRuns < 1:
		return c, fmt.Errorf("%w: --max-runs=%d: want 1 or more", ErrUsage, c.MaxRuns)
	case onNoCkpt != "restart" && onNoCkpt != "fail":
		return c, fmt.Errorf("%w: --on-no-checkpoint=%q: want restart or fail", ErrUsage, onNoCkpt)
	case c.Keep < 1:
		return c, fmt.Errorf("%w: --keep=%d: want 1 or more", ErrUsage, c.Keep)
	case !filepath.IsAbs(c.RuntimeDir):
		return c, fmt.Errorf("%w: --runtime-dir=%q: want an absolute folder", ErrUsage, c.RuntimeDir)
	case c.NodeprobeCache != "" && !filepath.IsAbs(c.NodeprobeCache):
		return c, fmt.Errorf("%w: --nodeprobe-cache=%q: want an absolute path (or empty to collect facts live)", ErrUsage, c.NodeprobeCache)
	case c.OnIncompatible != OnIncompatibleRequeue && c.OnIncompatible != OnIncompatibleFail:
		return c, fmt.Errorf("%w: --on-incompatible=%q: want %s or %s", ErrUsage, c.OnIncompatible, OnIncompatibleRequeue, OnIncompatibleFail)
	}
	return c, nil
}

func isNumber(s string) bool {
	n, err := strconv.ParseUint(s, 10, 32)
	return err == nil && strconv.FormatUint(n, 10) == s
}

// StepName is the step's folder name: "batch" or "step-N".
func (c Config) StepName() string {
	if c.Step == "batch" {
		return "batch"
	}
	return "step-" + c.Step
}

// RunDirName is the name of the step's runtime folder under runtime_dir/slurm-dmtcp-<uid>:
// "<job>.<step>", and for the other nodes of a step across nodes "<job>.<step>.node-<K>"
// (several nodes may share one /tmp; the plugin computes the same name to remove it).
func (c Config) RunDirName() string {
	n := c.JobID + "." + c.StepName()
	if c.Member() {
		n += ".node-" + strconv.Itoa(c.NodeID)
	}
	return n
}
