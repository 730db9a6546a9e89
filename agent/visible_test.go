package agent

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/history"
	"github.com/slurm-dmtcp/slurm-dmtcp/agent/jobcomment"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto/manifest"
)

// commentJob is squeue and scontrol of one job's Comment; hang makes scontrol hang until
// its context ends.
type commentJob struct {
	mu      sync.Mutex
	comment string
	hang    bool
}

func (c *commentJob) squeue(context.Context, ...string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return []byte(c.comment + "\n"), nil
}

func (c *commentJob) scontrol(ctx context.Context, args ...string) ([]byte, error) {
	if c.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.comment = strings.TrimPrefix(args[len(args)-1], "Comment=")
	return nil, nil
}

func (c *commentJob) get() string { c.mu.Lock(); defer c.mu.Unlock(); return c.comment }

func withVisible(a *Agent, cj *commentJob) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	pub := &jobcomment.Publisher{JobID: a.Config.JobID, Squeue: cj.squeue, Scontrol: cj.scontrol, Timeout: 300 * time.Millisecond, Log: logrus.NewEntry(log)}
	a.Visible = newVisible(a.Config, a.Layout.StepDir, "n1", pub, logrus.NewEntry(log))
}

func kinds(t *testing.T, stepDir string) []string {
	t.Helper()
	evs, bad, err := history.Read(stepDir)
	require.NoError(t, err)
	require.Zero(t, bad)
	var out []string
	for _, e := range evs {
		s := e.Kind
		if e.Reason != "" {
			s += ":" + e.Reason
		}
		if e.Why != "" {
			s += ":" + e.Why
		}
		out = append(out, s)
	}
	return out
}

// Each checkpoint, restore and requeue of the agent goes to the step's history and the
// job's Comment; a Comment the user set stays.
func TestVisibleRecordsAndComments(t *testing.T) {
	for _, tc := range []struct {
		name        string
		comment     string // the job's Comment before
		act         func(t *testing.T, a *Agent)
		wantHistory []string
		wantComment string // a prefix of the Comment after
	}{
		{"periodic checkpoint", "", func(t *testing.T, a *Agent) {
			_, err := a.Checkpoint(context.Background(), manifest.ReasonPeriodic)
			require.NoError(t, err)
		}, []string{"checkpoint:periodic"}, "slurm-dmtcp: gen=1 at="},
		{"the user's own Comment stays", "my sweep 3/10", func(t *testing.T, a *Agent) {
			_, err := a.Checkpoint(context.Background(), manifest.ReasonRequest)
			require.NoError(t, err)
		}, []string{"checkpoint:request"}, "my sweep 3/10"},
		{"recovery requeue", "slurm-dmtcp: gen=9 at=2026-01-01T00:00:00Z size=1MiB", func(t *testing.T, a *Agent) {
			_, err := a.Checkpoint(context.Background(), manifest.ReasonPeriodic)
			require.NoError(t, err)
			require.True(t, a.requeueToRestore(context.Background(), "killed by signal 9"))
		}, []string{"checkpoint:periodic", "requeue:recovery"}, "slurm-dmtcp: gen=1 at="},
		{"restore keeps the requeue's reason", "", func(t *testing.T, a *Agent) {
			c, err := a.Checkpoint(context.Background(), manifest.ReasonTimeLimit)
			require.NoError(t, err)
			a.Visible.requeue(history.WhyContinue, c.Generation.Number, "run 1 done")
			// the next run: another agent process
			a.Visible = newVisible(a.Config, a.Layout.StepDir, "n2", a.Visible.comment, a.Log)
			a.Visible.restore(c.Generation.Path, 1)
		}, []string{"checkpoint:time-limit", "requeue:continue", "restore:time-limit"}, "slurm-dmtcp: gen=1 at="},
		{"the checkpoint on the requeue's SIGTERM keeps the requeue's reason", "", func(t *testing.T, a *Agent) {
			c, err := a.Checkpoint(context.Background(), manifest.ReasonTimeLimit)
			require.NoError(t, err)
			a.Visible.requeue(history.WhyContinue, c.Generation.Number, "run 1 done")
			_, err = a.Checkpoint(context.Background(), manifest.ReasonSignal)
			require.NoError(t, err)
		}, []string{"checkpoint:time-limit", "requeue:continue", "checkpoint:signal"}, "slurm-dmtcp: gen=2 at="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _, _ := newTestAgent(t, Config{JobID: "7", Step: "batch"}, &fakeJob{})
			cj := &commentJob{comment: tc.comment}
			withVisible(a, cj)
			tc.act(t, a)
			a.Visible.flush(2 * time.Second)
			assert.Equal(t, tc.wantHistory, kinds(t, a.Layout.StepDir))
			assert.True(t, strings.HasPrefix(cj.get(), tc.wantComment), "comment %q", cj.get())
			if strings.HasSuffix(tc.wantHistory[len(tc.wantHistory)-1], "recovery") {
				assert.Contains(t, cj.get(), "requeue=recovery")
			}
			if strings.Contains(strings.Join(tc.wantHistory, " "), "requeue:continue") {
				assert.Contains(t, cj.get(), "requeue=continue")
			}
		})
	}
}

// A checkpoint does not wait for a hung scontrol.
func TestVisibleNeverHoldsUpACheckpoint(t *testing.T) {
	a, _, _ := newTestAgent(t, Config{JobID: "7", Step: "batch"}, nil)
	cj := &commentJob{hang: true}
	withVisible(a, cj)
	a.Visible.comment.Timeout = 5 * time.Second
	start := time.Now()
	for i := 0; i < 3; i++ {
		_, err := a.Checkpoint(context.Background(), manifest.ReasonPeriodic)
		require.NoError(t, err)
	}
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.Equal(t, []string{"checkpoint:periodic", "checkpoint:periodic", "checkpoint:periodic"}, kinds(t, a.Layout.StepDir))
	var nilV *visible
	nilV.checkpoint(1, 1, manifest.Meta{})
	nilV.restore("x", 1)
	nilV.requeue("x", 1, "")
	nilV.flush(time.Millisecond)
}
