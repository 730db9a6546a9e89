//go:build integration

package integration

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests whose expectations depend on the Slurm release read it from scontrol --version.
func TestParseSlurmRelease(t *testing.T) {
	for _, tc := range []struct {
		out          string
		major, minor int
		bad          bool
	}{
		{out: "slurm 24.11.5\n", major: 24, minor: 11},
		{out: "slurm-wlm 22.05.8\n", major: 22, minor: 5},
		{out: "slurm 25.05.0-0rc1", major: 25, minor: 5},
		{out: "", bad: true},
		{out: "scontrol: error: no conf", bad: true},
		{out: "slurm 24", bad: true},
	} {
		t.Run(tc.out, func(t *testing.T) {
			major, minor, err := parseSlurmRelease(tc.out)
			if tc.bad {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, []int{tc.major, tc.minor}, []int{major, minor})
		})
	}
}

// slurmctld's lines as Slurm 24.11.5 wrote them (make test SLURM=24.11): job 500044
// requeued at the end of its grace time and once more at the end of its restored run;
// job 500005 ended within its grace time and was requeued then; 500045 never preempted.
const ctldLog2411 = `[2026-12-07T13:07:50.639] _job_complete: JobId=500005 WEXITSTATUS 0
[2026-12-07T13:07:50.639] _job_complete: requeue JobId=500005 per user/system request
[2026-12-07T13:07:50.640] _job_complete: JobId=500005 done
[2026-12-07T13:07:50.648] Requeuing JobId=500005
[2026-12-07T13:20:21.002] preempted JobId=500044 has been requeued to reclaim resources for JobId=500045
[2026-12-07T13:20:22.711] Requeuing JobId=500044
[2026-12-07T13:20:26.072] _job_complete: JobId=500045 WEXITSTATUS 0
[2026-12-07T13:20:37.795] _job_complete: JobId=500044 WEXITSTATUS 0
[2026-12-07T13:20:37.795] _job_complete: requeue JobId=500044 per user/system request
[2026-12-07T13:20:37.795] _job_complete: JobId=500044 done
[2026-12-07T13:20:37.801] Requeuing JobId=500044
[2026-12-07T13:21:23.925] _job_complete: JobId=500044 WEXITSTATUS 0
[2026-12-07T13:21:23.926] _job_complete: JobId=500044 done
[2026-12-07T13:30:00.000] error: slurmd error running JobId=500099 on node(s)=vm: Job credential revoked
[2026-12-07T13:30:00.001] _job_complete: requeue JobId=500099 per user/system request
`

func TestParseGraceRequeues(t *testing.T) {
	assert.Equal(t, graceRequeues{preempted: 1, atEnd: 1}, parseGraceRequeues(ctldLog2411, "500044"))
	assert.Equal(t, graceRequeues{atEnd: 1}, parseGraceRequeues(ctldLog2411, "500005"))
	assert.Equal(t, graceRequeues{}, parseGraceRequeues(ctldLog2411, "500045"))
	assert.Equal(t, graceRequeues{atEnd: 1, slurmdError: true}, parseGraceRequeues(ctldLog2411, "500099"))
	assert.Equal(t, graceRequeues{}, parseGraceRequeues(ctldLog2411, "50004"), "a prefix of a job id is another job")
}

func TestCountRuns(t *testing.T) {
	runs := countRuns([]int{1, 2, 3, 4, 3, 4, 5, 1, 2, 3, 4, 5})
	require.Len(t, runs, 2)
	assert.Empty(t, wholeCount(runs[0], 5), "a restore's replayed counts are whole")
	assert.Empty(t, wholeCount(runs[1], 5))
	assert.NotEmpty(t, wholeCount([]int{1, 2, 4, 5}, 5), "a gap")
	assert.NotEmpty(t, wholeCount([]int{1, 2, 3, 4}, 5), "short")
	assert.NotEmpty(t, wholeCount(nil, 5))
	assert.Empty(t, countRuns(nil))
}
