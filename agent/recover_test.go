package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/proto/manifest"
)

// A batch step whose computation died with a generation to restore has its job requeued,
// at most maxRecoveries times; without a generation, in a step of srun, or when Slurm
// refuses, the job ends as it would have.
func TestRequeueToRestore(t *testing.T) {
	for _, tc := range []struct {
		name        string
		step        string
		generation  bool
		before      string // recoveriesFile's content ("": none)
		requeueErr  error
		wantRequeue int
		wantAfter   string
		wantLine    string
	}{
		{"first death", "batch", true, "", nil, 1, "1\n", "job requeued to restore generation 1 (automatic requeue 1 of at most 3)"},
		{"third death", "batch", true, "2\n", nil, 1, "3\n", "(automatic requeue 3 of at most 3)"},
		{"bound reached", "batch", true, "3\n", nil, 0, "3\n", "after 3 automatic requeues; the job is not requeued again: scontrol requeue restores generation 1"},
		{"torn record", "batch", true, "x", nil, 0, "x", ""},
		{"no generation", "batch", false, "", nil, 0, "", ""},
		{"a step of srun", "0", true, "", nil, 0, "", ""},
		{"requeue refused", "batch", true, "", errors.New("Requested operation is presently disabled"), 1, "1\n", "the requeue to restore generation 1 failed (Requested operation is presently disabled): scontrol requeue 7 resumes the job from it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := &fakeJob{requeueTo: tc.requeueErr}
			a, _, progress := newTestAgent(t, Config{JobID: "7", Step: tc.step}, job)
			if tc.generation {
				_, err := a.Checkpoint(context.Background(), manifest.ReasonPeriodic)
				require.NoError(t, err)
			}
			rec := filepath.Join(a.Layout.StepDir, recoveriesFile)
			if tc.before != "" {
				require.NoError(t, os.WriteFile(rec, []byte(tc.before), 0o600))
			}
			got := a.requeueToRestore(context.Background(), "task 0 failed inside DMTCP (exit 99)")
			assert.Equal(t, tc.wantRequeue == 1 && tc.requeueErr == nil, got)
			assert.Equal(t, tc.wantRequeue, job.requeues)
			b, _ := os.ReadFile(rec)
			assert.Equal(t, tc.wantAfter, string(b))
			if tc.wantLine != "" {
				assert.Contains(t, progress.String(), tc.wantLine)
			}
		})
	}
}
