package agent

import (
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
		want     JobInfo
		err      string
	}{
		{"first run with a limit", "JobId=7 JobName=x JobState=RUNNING Requeue=1 Restarts=0 BatchFlag=1 TimeLimit=00:03:00 StartTime=2026-11-25T20:45:37 EndTime=2026-11-25T20:48:37",
			JobInfo{Restarts: 0, State: "RUNNING", StartTime: at("2026-11-25T20:45:37"), EndTime: at("2026-11-25T20:48:37")}, ""},
		{"requeued twice, no limit", "JobId=7 JobState=RUNNING Restarts=2 BatchFlag=1 TimeLimit=UNLIMITED StartTime=2026-11-25T20:45:37 EndTime=Unknown",
			JobInfo{Restarts: 2, State: "RUNNING", StartTime: at("2026-11-25T20:45:37")}, ""},
		{"being preempted", "JobId=7 JobState=RUNNING Restarts=0 StartTime=2026-11-25T20:45:37 EndTime=Unknown PreemptEligibleTime=2026-11-25T20:45:37 PreemptTime=2026-11-25T20:46:00",
			JobInfo{State: "RUNNING", StartTime: at("2026-11-25T20:45:37"), PreemptTime: at("2026-11-25T20:46:00")}, ""},
		{"not preempted", "JobId=7 JobState=RUNNING Restarts=0 StartTime=2026-11-25T20:45:37 EndTime=Unknown PreemptTime=None",
			JobInfo{State: "RUNNING", StartTime: at("2026-11-25T20:45:37")}, ""},
		{"missing", "slurm_load_jobs error: Invalid job id specified", JobInfo{}, "no Restarts= field"},
		{"garbage", "JobId=7 Restarts=many", JobInfo{}, `Restarts="many"`},
		{"negative", "Restarts=-1", JobInfo{}, "not a count"},
		{"bad time", "Restarts=0 EndTime=tomorrow", JobInfo{}, `EndTime="tomorrow"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := parseJob(tc.in, utc)
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
