package dmtcpctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/history"
)

func runCtlEnv(vars map[string]string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(args, Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return vars[k] }, Now: func() time.Time { return t0 }})
	return code, out.String(), errb.String()
}

// jobFolder makes a job's checkpoint folder with a batch step's history.
func jobFolder(t *testing.T) string {
	job := filepath.Join(t.TempDir(), "4711")
	batch := filepath.Join(job, "batch")
	require.NoError(t, os.MkdirAll(batch, 0o700))
	for _, e := range []history.Event{
		{Time: t0, Kind: history.KindCheckpoint, Generation: 1, Reason: "periodic", Bytes: 48 << 20, DurationS: 0.4, Node: "n1"},
		{Time: t0.Add(time.Minute), Kind: history.KindCheckpoint, Generation: 2, Reason: "time-limit", Bytes: 50 << 20, Node: "n1"},
		{Time: t0.Add(time.Minute), Kind: history.KindRequeue, Why: history.WhyContinue, Generation: 2, Detail: "run 1 done", Node: "n1"},
		{Time: t0.Add(3 * time.Minute), Kind: history.KindRestore, Restart: 1, Generation: 2, Reason: "time-limit", Attempt: 2, Node: "n2"},
	} {
		require.NoError(t, history.Append(batch, e))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(job, "step-0"), 0o700))
	return job
}

func TestHistory(t *testing.T) {
	job := jobFolder(t)
	// checkpoint_dir of plugstack.conf, as the plugin reads it.
	conf := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(conf, "slurm.conf"), nil, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(conf, "plugstack.conf"),
		[]byte(fmt.Sprintf("required /x/spank_dmtcp.so checkpoint_dir=%s/%%j\n", filepath.Dir(job))), 0o644))
	id := filepath.Base(job)
	for _, tc := range []struct {
		name string
		vars map[string]string
		args []string
		code int
		out  []string
		err  string
	}{
		{"--dir", nil, []string{"history", "--dir", job}, ExitOK, []string{"step batch: " + filepath.Join(job, "batch"),
			"checkpoint       1  periodic      48.0 MiB  0.4s, on n1", "requeue          2  continue", "run 1 done",
			"restore          2  time-limit", "attempt 2, on n2", "step step-0", "no checkpoint yet"}, ""},
		{"job id and plugstack.conf", map[string]string{"SLURM_CONF": filepath.Join(conf, "slurm.conf")}, []string{"history", "42"}, ExitFailed, nil, "history of job 42"},
		{"job id found through checkpoint_dir", map[string]string{"SLURM_CONF": filepath.Join(conf, "slurm.conf")}, []string{"history", id}, ExitOK, []string{"step batch"}, ""},
		{"inside the job", map[string]string{"SLURM_CONF": filepath.Join(conf, "slurm.conf"), "SLURM_JOB_ID": id}, []string{"history"}, ExitOK, []string{"step batch"}, ""},
		{"no job", nil, []string{"history"}, ExitUsage, nil, "which job?"},
		{"not a job id", nil, []string{"history", "x1"}, ExitUsage, nil, `history "x1": want a job number`},
		{"two job ids", nil, []string{"history", "1", "2"}, ExitUsage, nil, "at most one job id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCtlEnv(tc.vars, tc.args...)
			assert.Equal(t, tc.code, code, "stdout %q stderr %q", out, errs)
			for _, o := range tc.out {
				assert.Contains(t, out, o)
			}
			assert.Contains(t, errs, tc.err)
		})
	}
}

func TestHistoryJSON(t *testing.T) {
	job := jobFolder(t)
	code, out, _ := runCtl("--json", "history", "--dir", job)
	require.Equal(t, ExitOK, code)
	var r HistoryResult
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	require.Len(t, r.Steps, 2)
	assert.Equal(t, "batch", r.Steps[0].Step)
	require.Len(t, r.Steps[0].Events, 4)
	assert.Equal(t, history.WhyContinue, r.Steps[0].Events[2].Why)
	assert.Equal(t, 1, r.Steps[0].Events[3].Restart)
	assert.Empty(t, r.Steps[1].Events)
}

// With --json, errors dmtcpctl finds itself are JSON on stdout too, as the agent's are.
func TestJSONErrorsEverywhere(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--json", "reboot"}, ExitUsage, codeUsage},
		{[]string{"status", "--json", "--timeout", "2x"}, ExitUsage, codeUsage},
		{[]string{"--json", "--socket", "/nonexistent/s", "status"}, ExitNoAgent, codeUnreachable},
		{[]string{"--json", "generations"}, ExitNoAgent, codeUnreachable},
		{[]string{"--json", "history", "--dir", "/nonexistent/job"}, ExitFailed, codeNotFound},
		{[]string{"--json", "--socket", "/nonexistent/s", "wait", "x"}, ExitUsage, codeUsage},
	} {
		t.Run(fmt.Sprint(tc.args), func(t *testing.T) {
			code, out, errs := runCtl(tc.args...)
			assert.Equal(t, tc.code, code)
			var e struct {
				Error struct{ Code, Message string }
			}
			require.NoError(t, json.Unmarshal([]byte(out), &e), "stdout %q", out)
			assert.Equal(t, tc.want, e.Error.Code)
			assert.NotEmpty(t, e.Error.Message)
			assert.Contains(t, errs, "dmtcpctl: ", "the message is on stderr too")
		})
	}
}
