package agent

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
)

// JobInfo is what the agent needs to know of its job from slurmctld.
type JobInfo struct {
	Restarts  int       // times the job was requeued (Restarts=)
	State     string    // JobState=
	StartTime time.Time // zero when unknown
	EndTime   time.Time // zero when the job has no time limit
	// PreemptTime is when Slurm began to preempt the job (zero when it is not): its steps
	// got SIGTERM, its batch script goes on until the partition's GraceTime ends.
	PreemptTime time.Time
}

// SlurmJob reads and requeues the agent's own job through scontrol, as the job's user.
type SlurmJob struct {
	ID string
}

// Info asks slurmctld about the job (scontrol show job -o). slurmstepd does not hand the
// batch step its restart count before the script's environment is built, and the end time
// moves when an administrator changes the time limit, so the agent asks Slurm itself.
func (j SlurmJob) Info(ctx context.Context) (JobInfo, error) {
	out, err := j.scontrol()(ctx, "show", "job", "-o", j.ID)
	if err != nil {
		return JobInfo{}, err
	}
	return parseJob(string(out), time.Local)
}

// Requeue sends the job back to the queue; Slurm then signals its steps (SIGTERM).
func (j SlurmJob) Requeue(ctx context.Context) error {
	_, err := j.scontrol()(ctx, "requeue", j.ID)
	return err
}

func (j SlurmJob) scontrol() slurm.Runner { return slurm.Scontrol("scontrol", 10*time.Second) }

// parseJob reads one line of `scontrol show job -o`; times are in the zone scontrol prints
// them in (the local one).
func parseJob(out string, loc *time.Location) (JobInfo, error) {
	restarts := jobField(out, "Restarts")
	if restarts == "" {
		return JobInfo{}, fmt.Errorf("scontrol: no Restarts= field in %q", firstWords(out, 8))
	}
	info := JobInfo{State: jobField(out, "JobState")}
	var err error
	if info.Restarts, err = strconv.Atoi(restarts); err != nil || info.Restarts < 0 {
		return JobInfo{}, fmt.Errorf("scontrol: Restarts=%q is not a count", restarts)
	}
	for _, t := range []struct {
		key string
		to  *time.Time
	}{{"StartTime", &info.StartTime}, {"EndTime", &info.EndTime}, {"PreemptTime", &info.PreemptTime}} {
		v := jobField(out, t.key)
		if *t.to, err = parseSlurmTime(v, loc); err != nil {
			return JobInfo{}, fmt.Errorf("scontrol: %s=%q: %w", t.key, v, err)
		}
	}
	return info, nil
}

// parseSlurmTime reads 2026-11-25T20:48:37; "Unknown", "None" and "N/A" give the zero time.
func parseSlurmTime(v string, loc *time.Location) (time.Time, error) {
	switch v {
	case "Unknown", "None", "N/A", "":
		return time.Time{}, nil
	}
	return time.ParseInLocation("2006-01-02T15:04:05", v, loc)
}

func firstWords(s string, n int) string {
	f := strings.Fields(s)
	if len(f) > n {
		f = f[:n]
	}
	return strings.Join(f, " ")
}
