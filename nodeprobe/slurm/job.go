package slurm

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Job is what the agent needs to know of its job from slurmctld (scontrol show job -o).
type Job struct {
	Restarts  int       // times the job was requeued (Restarts=)
	State     string    // JobState=
	StartTime time.Time // zero when unknown
	EndTime   time.Time // zero when the job has no time limit
	// PreemptTime is when Slurm began to preempt the job (zero when it is not): its steps
	// got SIGTERM, its batch script goes on until the partition's GraceTime ends.
	PreemptTime time.Time
}

// ShowJob runs scontrol show job -o id and parses it, times in the local zone (the one
// scontrol prints them in).
func ShowJob(ctx context.Context, run Runner, id string) (Job, error) {
	out, err := run(ctx, "show", "job", "-o", id)
	if err != nil {
		return Job{}, err
	}
	return ParseJob(string(out), time.Local)
}

// ParseJob reads the output of scontrol show job -o (the first job's fields when it lists
// several); times are in loc, the zone scontrol prints them in.
func ParseJob(out string, loc *time.Location) (Job, error) {
	r := ParseRecord(out)
	restarts := r.Value("Restarts")
	if restarts == "" {
		return Job{}, fmt.Errorf("scontrol: no Restarts= field in %q", firstWords(out, 8))
	}
	job := Job{State: r.Value("JobState")}
	var err error
	if job.Restarts, err = strconv.Atoi(restarts); err != nil || job.Restarts < 0 {
		return Job{}, fmt.Errorf("scontrol: Restarts=%q is not a count", restarts)
	}
	for _, t := range []struct {
		key string
		to  *time.Time
	}{{"StartTime", &job.StartTime}, {"EndTime", &job.EndTime}, {"PreemptTime", &job.PreemptTime}} {
		v := r.Value(t.key)
		if *t.to, err = parseSlurmTime(v, loc); err != nil {
			return Job{}, fmt.Errorf("scontrol: %s=%q: %w", t.key, v, err)
		}
	}
	return job, nil
}

// parseSlurmTime reads 2026-11-25T20:48:37; "Unknown", "None" and "N/A" give the zero time.
func parseSlurmTime(v string, loc *time.Location) (time.Time, error) {
	switch v {
	case "Unknown", "None", "N/A", "":
		return time.Time{}, nil
	}
	return time.ParseInLocation("2006-01-02T15:04:05", v, loc)
}

// firstWords is the first n words of s, for messages about output that is not a record.
func firstWords(s string, n int) string {
	f := strings.Fields(s)
	if len(f) > n {
		f = f[:n]
	}
	return strings.Join(f, " ")
}

// StepNodes runs scontrol show step -o jobID.step and returns the step's NodeList= (a
// hostlist expression: n[1-2]).
func StepNodes(ctx context.Context, run Runner, jobID, step string) (string, error) {
	out, err := run(ctx, "show", "step", "-o", jobID+"."+step)
	if err != nil {
		return "", err
	}
	list := ParseRecord(string(out)).Value("NodeList")
	if list == "" {
		return "", fmt.Errorf("no NodeList= in scontrol show step %s.%s: %q", jobID, step, firstWords(string(out), 8))
	}
	return list, nil
}
