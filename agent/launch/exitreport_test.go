package launch

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A program that ended by itself leaves proto.TaskExitedFile with its status; a signal, a
// DMTCP failure or the agent's stop leave none, and neither does a task the agent did not
// ask (a task of a step started from inside the step: it has no report_exit).
func TestRecordExit(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		code int
		want string // the record's content; "" none
	}{
		{"exit 0", nil, 0, "0\n"},
		{"exit 1", nil, 1, "1\n"},
		{"exit 128", nil, 128, "128\n"},
		{"SIGKILL", nil, 137, ""},
		{"SIGSEGV", nil, 139, ""},
		{"DMTCP failed (99)", nil, 99, ""},
		{"DMTCP failed, its code set by the environment", []string{"DMTCP_FAIL_RC=42"}, 42, ""},
		{"99 is the program's own when DMTCP fails with another", []string{"DMTCP_FAIL_RC=42"}, 99, "99\n"},
		{"stopped by the agent after its checkpoint", nil, ExitStopped, ""},
		{"its user's own SIGTERM", nil, 143, ""},
		{"not asked", []string{"SLURM_DMTCP_REPORT_EXIT="}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := t.TempDir()
			env := append([]string{"SLURM_DMTCP_RUNDIR=" + run, "SLURM_DMTCP_REPORT_EXIT=1", "SLURM_LOCALID=3"}, tc.env...)
			require.NoError(t, RecordExit(env, tc.code, tc.code == ExitStopped))
			b, err := os.ReadFile(filepath.Join(run, "task-exited.3"))
			if tc.want == "" {
				assert.ErrorIs(t, err, os.ErrNotExist)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(b))
			left, _ := filepath.Glob(filepath.Join(run, ".task-exited*"))
			assert.Empty(t, left, "no temporary file left")
		})
	}
	require.NoError(t, RecordExit([]string{"HOME=/h"}, 0, false), "no runtime folder: nothing to write")
	err := RecordExit([]string{"SLURM_DMTCP_RUNDIR=" + t.TempDir(), "SLURM_DMTCP_REPORT_EXIT=1"}, 0, false)
	assert.ErrorContains(t, err, "SLURM_LOCALID")
}

// The launcher keeps report_exit to itself: a step started from inside the task must not
// report into this step's runtime folder.
func TestCommandDropsReportExit(t *testing.T) {
	dmtcp := fakePrefix(t)
	_, _, env, err := Command([]string{"x"}, []string{"SLURM_DMTCP_ARGV0=/bin/true", "SLURM_DMTCP_COORD_HOST=h",
		"SLURM_DMTCP_COORD_PORT=1", "SLURM_DMTCP_DMTCP_PREFIX=" + dmtcp, "SLURM_DMTCP_REPORT_EXIT=1", "SLURM_DMTCP_RUNDIR=/r"}, "")
	require.NoError(t, err)
	assert.NotContains(t, env, "SLURM_DMTCP_REPORT_EXIT=1")
	assert.Contains(t, env, "SLURM_DMTCP_RUNDIR=/r")
}

func TestRestoreMayHaveFailed(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int
		want bool
	}{
		{"clean exit", 0, false},
		{"its own error (a subprocess died of SIGSEGV)", 1, true},
		{"DMTCP's failure", 99, true},
		{"killed by SIGSEGV", 128 + 11, true},
		{"stopped by the agent", ExitStopped, false},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, RestoreMayHaveFailed(tc.code)) })
	}
}

// The statuses of a step that ended as Slurm stopped the run before: each task takes its
// own by local id; anything else is an error that names the variable.
func TestEnded(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ended     string
		localID   string
		wantCode  int
		wantEnded bool
		wantErr   string
	}{
		{"not set: the program runs", "", "0", 0, false, ""},
		{"task 0", "0 3", "0", 0, true, ""},
		{"task 1", "0 3", "1", 3, true, ""},
		{"no status for the task", "0", "1", 0, false, `SLURM_DMTCP_ENDED="0" holds no exit status for the task of SLURM_LOCALID "1"`},
		{"not a status", "x", "0", 0, false, `"x" is not an exit status (0 to 128)`},
		{"a signal's status", "137", "0", 0, false, "is not an exit status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, ended, err := Ended([]string{"SLURM_DMTCP_ENDED=" + tc.ended, "SLURM_LOCALID=" + tc.localID})
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantEnded, ended)
			assert.Equal(t, tc.wantCode, code)
		})
	}
}
