package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
)

// flakyJob fails its first fails answers, then tells restarts.
type flakyJob struct {
	fails, asked, restarts int
}

func (j *flakyJob) Info(context.Context) (slurm.Job, error) {
	j.asked++
	if j.asked <= j.fails {
		return slurm.Job{}, errors.New("scontrol: Unable to contact slurm controller")
	}
	return slurm.Job{Restarts: j.restarts}, nil
}
func (j *flakyJob) Requeue(context.Context) error { return nil }

// The batch step's restart count comes from Slurm, asked again when it fails; a Slurm that
// never answers does not make a restarted step start from the top.
func TestBatchRestartCount(t *testing.T) {
	for _, tc := range []struct {
		name    string
		job     *flakyJob
		want    int
		wantErr string
	}{
		{"Slurm answers", &flakyJob{restarts: 3}, 3, ""},
		{"Slurm says it is the job's first run", &flakyJob{restarts: 0}, 0, ""},
		{"Slurm answers the third time", &flakyJob{fails: 2, restarts: 2}, 2, ""},
		{"Slurm never answers", &flakyJob{fails: 1 << 30}, 1, "taken for a restart"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			n, err := batchRestartCount(ctx, tc.job, 10*time.Millisecond)
			assert.Equal(t, tc.want, n)
			if tc.wantErr == "" {
				require.NoError(t, err)
			} else {
				assert.ErrorContains(t, err, tc.wantErr)
				assert.ErrorContains(t, err, "Unable to contact slurm controller")
			}
		})
	}
}
