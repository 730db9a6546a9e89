package slurm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseJob(t *testing.T) {
	utc := time.UTC
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02T15:04:05", s, utc)
		require.NoError(t, err)
		return v
	}
	for _, tc := range []struct {
		name, in string
		want     Job
		err      string
	}{
		{"first run with a limit", "JobId=7 JobName=x JobState=RUNNING Requeue=1 Restarts=0 BatchFlag=1 TimeLimit=00:03:00 StartTime=2026-11-25T20:45:37 EndTime=2026-11-25T20:48:37",
			Job{Restarts: 0, State: "RUNNING", StartTime: at("2026-11-25T20:45:37"), EndTime: at("2026-11-25T20:48:37")}, ""},
		{"requeued twice, no limit", "JobId=7 JobState=RUNNING Restarts=2 BatchFlag=1 TimeLimit=UNLIMITED StartTime=2026-11-25T20:45:37 EndTime=Unknown",
			Job{Restarts: 2, State: "RUNNING", StartTime: at("2026-11-25T20:45:37")}, ""},
		{"being preempted", "JobId=7 JobState=RUNNING Restarts=0 StartTime=2026-11-25T20:45:37 EndTime=Unknown PreemptEligibleTime=2026-11-25T20:45:37 PreemptTime=2026-11-25T20:46:00",
			Job{State: "RUNNING", StartTime: at("2026-11-25T20:45:37"), PreemptTime: at("2026-11-25T20:46:00")}, ""},
		{"not preempted", "JobId=7 JobState=RUNNING Restarts=0 StartTime=2026-11-25T20:45:37 EndTime=Unknown PreemptTime=None",
			Job{State: "RUNNING", StartTime: at("2026-11-25T20:45:37")}, ""},
		{"a Comment that looks like fields", "JobId=7 JobState=RUNNING Restarts=1 StartTime=2026-11-25T20:45:37 EndTime=Unknown Command=/a Comment=Restarts=9 EndTime=never StdOut=/o",
			Job{Restarts: 1, State: "RUNNING", StartTime: at("2026-11-25T20:45:37")}, ""},
		{"missing", "slurm_load_jobs error: Invalid job id specified", Job{}, "no Restarts= field"},
		{"(null)", "JobId=7 Restarts=(null)", Job{}, "no Restarts= field"},
		{"garbage", "JobId=7 Restarts=many", Job{}, `Restarts="many"`},
		{"negative", "Restarts=-1", Job{}, "not a count"},
		{"bad time", "Restarts=0 EndTime=tomorrow", Job{}, `EndTime="tomorrow"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := ParseJob(tc.in, utc)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, info)
		})
	}
}

func TestShowJob(t *testing.T) {
	var calls []string
	run := func(_ context.Context, args ...string) ([]byte, error) {
		calls = append(calls, strings.Join(args, " "))
		if args[3] == "8" {
			return nil, ErrUnreachable
		}
		return []byte("JobId=7 JobState=PENDING Restarts=3 StartTime=Unknown EndTime=Unknown\n"), nil
	}
	job, err := ShowJob(context.Background(), run, "7")
	require.NoError(t, err)
	assert.Equal(t, Job{Restarts: 3, State: "PENDING"}, job)
	_, err = ShowJob(context.Background(), run, "8")
	assert.True(t, errors.Is(err, ErrUnreachable))
	assert.Equal(t, []string{"show job -o 7", "show job -o 8"}, calls)
}

func TestStepNodes(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		runErr    error
		want, err string
	}{
		{"listed", "StepId=42.3 UserId=1001 State=RUNNING Partition=debug NodeList=n[1-2] Nodes=2 Name=bash\n", nil, "n[1-2]", ""},
		{"(null)", "StepId=42.3 NodeList=(null) Nodes=0\n", nil, "", "no NodeList= in scontrol show step 42.3"},
		{"not a record", "Invalid job id specified\n", nil, "", `no NodeList= in scontrol show step 42.3: "Invalid job id specified"`},
		{"scontrol fails", "", ErrUnreachable, "", "no answer from slurmctld"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			run := func(_ context.Context, a ...string) ([]byte, error) {
				args = a
				return []byte(tc.out), tc.runErr
			}
			list, err := StepNodes(context.Background(), run, "42", "3")
			assert.Equal(t, []string{"show", "step", "-o", "42.3"}, args)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, list)
		})
	}
}
