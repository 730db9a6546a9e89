package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeScontrol writes a scontrol stand-in that logs its arguments and answers from canned
// outputs: show job, show node, and which sub-commands fail.
func fakeScontrol(t *testing.T, jobFeatures, nodeFeatures, failOn string) (path, logFile string) {
	t.Helper()
	dir := t.TempDir()
	logFile = filepath.Join(dir, "calls")
	script := `#!/bin/sh
echo "$*" >>` + logFile + `
case "$1 $2" in
"show job") echo "JobId=42 JobName=x Features=` + jobFeatures + ` DelayBoot=00:00:00 Restarts=1"; exit 0;;
"show node") echo "NodeName=n1 Arch=x86_64 AvailableFeatures=` + nodeFeatures + ` ActiveFeatures=` + nodeFeatures + ` State=IDLE"; exit 0;;
esac
case "$1" in
` + failOn + `) echo "slurm_update error: Invalid feature specification" >&2; exit 1;;
esac
exit 0
`
	path = filepath.Join(dir, "scontrol")
	require.NoError(t, os.WriteFile(path, []byte(script), 0o755))
	return path, logFile
}

func TestScontrolRequeue(t *testing.T) {
	const f = "dmtcp_c-0123456789"
	for _, tc := range []struct {
		name, jobFeatures, nodeFeatures, failOn string
		want                                    RequeueResult
		why                                     string
		calls                                   []string
		err                                     string
	}{
		{name: "constrained and released", jobFeatures: "(null)", nodeFeatures: "ib," + f, failOn: "none",
			want:  RequeueResult{Constraint: f},
			calls: []string{"show job -o 42", "requeuehold 42", "show node -o", "update JobId=42 Features=" + f, "release 42"}},
		{name: "the user's own constraint is kept", jobFeatures: "ib", nodeFeatures: "ib," + f, failOn: "none",
			want:  RequeueResult{Constraint: "ib&" + f},
			calls: []string{"show job -o 42", "requeuehold 42", "show node -o", "update JobId=42 Features=ib&" + f, "release 42"}},
		{name: "no node offers the class: held", jobFeatures: "(null)", nodeFeatures: "ib", failOn: "none",
			why:   "no node publishes the checkpoint's class (feature " + f + "); once an administrator has run slurm-dmtcp-nodeprobe publish on nodes of that class: scontrol update JobId=42 Features=" + f + "; scontrol release 42",
			calls: []string{"show job -o 42", "requeuehold 42", "show node -o"}},
		{name: "constraint refused: held", jobFeatures: "(null)", nodeFeatures: f, failOn: "update",
			why:   "Slurm refused Features=" + f,
			calls: []string{"show job -o 42", "requeuehold 42", "show node -o", "update JobId=42 Features=" + f}},
		{name: "already constrained: a stale class, held", jobFeatures: f, nodeFeatures: f, failOn: "none",
			why:   "the job already required feature " + f + ", yet this node, which publishes it, differs",
			calls: []string{"show job -o 42", "requeuehold 42"}},
		{name: "requeuehold refused", jobFeatures: "(null)", nodeFeatures: f, failOn: "requeuehold",
			err:   "requeuehold 42: exit status 1: slurm_update error",
			calls: []string{"show job -o 42", "requeuehold 42"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, logFile := fakeScontrol(t, tc.jobFeatures, tc.nodeFeatures, tc.failOn)
			got, err := ScontrolRequeue(path, 10*time.Second)(context.Background(), "42", f)
			b, _ := os.ReadFile(logFile)
			assert.Equal(t, tc.calls, strings.Split(strings.TrimSpace(string(b)), "\n"))
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			if tc.why != "" {
				assert.True(t, got.Held)
				assert.Contains(t, got.Why, tc.why)
				return
			}
			assert.Equal(t, tc.want, got)
		})
	}
}
