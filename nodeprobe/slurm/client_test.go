package slurm

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeProgram writes a shell script with body at dir/name and returns its path.
func fakeProgram(t *testing.T, name, body string) string {
	t.Helper()
	path := t.TempDir() + "/" + name
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	return path
}

// A slurmctld that does not answer is told apart from one that refuses: the agent's
// messages say which.
func TestScontrolUnreachable(t *testing.T) {
	for _, tc := range []struct {
		name, body  string
		unreachable bool
		want        string
	}{
		{"refused", "echo 'Invalid job id specified' >&2; exit 1", false, "scontrol requeue 7: exit status 1: Invalid job id specified"},
		{"controller down", "echo 'slurm_requeue error: Unable to contact slurm controller (connect failure)' >&2; exit 1", true,
			"no answer from slurmctld within 300ms: slurm_requeue error: Unable to contact slurm controller (connect failure)"},
		{"no answer in time", "exec sleep 5", true, "scontrol requeue 7: no answer from slurmctld within 300ms"},
		{"answered", "echo ok", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := fakeProgram(t, "scontrol", tc.body)
			_, err := Scontrol(path, 300*time.Millisecond)(context.Background(), "requeue", "7")
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, tc.unreachable, errors.Is(err, ErrUnreachable))
		})
	}
}

// squeue's stdout is data (a job's Comment): a warning on its stderr stays out of it, and
// its errors are told apart like scontrol's.
func TestSqueue(t *testing.T) {
	for _, tc := range []struct {
		name, body  string
		out         string
		unreachable bool
		err         string
	}{
		{"answered, warning on stderr", "echo 'squeue: warning: x' >&2; echo 'my comment'", "my comment\n", false, ""},
		{"refused", "echo 'squeue: error: Invalid job id specified' >&2; exit 1", "", false,
			"squeue --jobs 7: exit status 1: squeue: error: Invalid job id specified"},
		{"controller down", "echo 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)' >&2; exit 1", "", true,
			"no answer from slurmctld within 300ms"},
		{"no answer in time", "exec sleep 5", "", true, "squeue --jobs 7: no answer from slurmctld within 300ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Squeue(fakeProgram(t, "squeue", tc.body), 300*time.Millisecond)(context.Background(), "--jobs", "7")
			if tc.err == "" {
				require.NoError(t, err)
				assert.Equal(t, tc.out, string(out))
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.err)
			assert.Equal(t, tc.unreachable, errors.Is(err, ErrUnreachable))
		})
	}
}

func TestParseRecord(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Record
	}{
		{"plain", "JobId=7 JobName=x Features=ib&gpu DelayBoot=00:00:00 Restarts=1\n",
			Record{"JobId": "7", "JobName": "x", "Features": "ib&gpu", "DelayBoot": "00:00:00", "Restarts": "1"}},
		{"values with spaces", "NodeName=n1 OS=Linux 6.1.0-18-amd64 #1 SMP (2024-02-01)  RealMemory=24105 Reason=Not responding [slurm@2026-11-25T20:00:00]",
			Record{"NodeName": "n1", "OS": "Linux 6.1.0-18-amd64 #1 SMP (2024-02-01)", "RealMemory": "24105", "Reason": "Not responding [slurm@2026-11-25T20:00:00]"}},
		{"a value's own key=value words stay in it", "JobId=7 Command=/bin/app --size=3 -n=2 Comment=slurm-dmtcp: gen=5 at=2026-12-07T12:00:00Z size=48MiB StdOut=/o",
			Record{"JobId": "7", "Command": "/bin/app --size=3 -n=2", "Comment": "slurm-dmtcp: gen=5 at=2026-12-07T12:00:00Z size=48MiB", "StdOut": "/o"}},
		{"the first of two equal keys wins", "JobId=7 Restarts=1 Comment=see Restarts=9 later StdOut=/o",
			Record{"JobId": "7", "Restarts": "1", "Comment": "see", "StdOut": "/o"}},
		{"keys of scontrol's with odd characters", "MCS_label=N/A CPUs/Task=1 AllocNode:Sid=h:12 ReqB:S:C:T=0:0:*:* TRES=cpu=1,mem=1G",
			Record{"MCS_label": "N/A", "CPUs/Task": "1", "AllocNode:Sid": "h:12", "ReqB:S:C:T": "0:0:*:*", "TRES": "cpu=1,mem=1G"}},
		{"empty and (null) values", "Features= Gres=(null) Licenses=(null)", Record{"Features": "", "Gres": "(null)", "Licenses": "(null)"}},
		{"words before any key are dropped", "slurm_load_jobs error: Invalid job id specified", Record{}},
		{"lines are spaces", "JobId=7 JobState=RUNNING\nJobId=8 JobState=PENDING Restarts=2\n",
			Record{"JobId": "7", "JobState": "RUNNING", "Restarts": "2"}},
		{"nothing", "", Record{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, ParseRecord(tc.in))
		})
	}
	r := ParseRecord("JobId=7 Features=(null) Gres= X=1")
	assert.Equal(t, "", r.Value("Features"), "(null) is no value")
	assert.Equal(t, "", r.Value("Gres"))
	assert.Equal(t, "", r.Value("Missing"))
	assert.Equal(t, "1", r.Value("X"))
}
