package agent

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/generations"
	"github.com/slurm-dmtcp/slurm-dmtcp/agent/history"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto/manifest"
)

// commitOne commits a generation holding one small image.
func commitOne(t *testing.T, store *generations.Store, step string) generations.Generation {
	cur := filepath.Join(step, generations.CurrentDirName)
	require.NoError(t, os.MkdirAll(cur, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(cur, "ckpt_x_1.dmtcp"), []byte("image"), 0o600))
	p, err := store.Begin()
	require.NoError(t, err)
	now := time.Now()
	c, err := p.CommitFrom(cur, manifest.Meta{JobID: 7, StepID: "batch", User: "u", Node: "n", DMTCPVersion: "5.0",
		Reason: manifest.ReasonPeriodic, StartTime: now, EndTime: now})
	require.NoError(t, err)
	return c.Generation
}

func TestRestorePlan(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	for _, tc := range []struct {
		name        string
		cfg         Config
		gens        int
		finishedAt  int // -1: the step never finished by itself
		wantRestore bool
		wantNote    string
		wantErr     string
	}{
		{"first run", Config{}, 1, -1, false, "", ""},
		{"restart restores the newest", Config{RestartCount: 1}, 2, -1, true, "restart 1: restoring generation 2", ""},
		{"restart without generations starts from the top", Config{RestartCount: 1}, 0, -1, false, "starting from the top", ""},
		{"restart without generations fails by policy", Config{RestartCount: 1, FailWithoutCheckpoint: true}, 0, -1, false, "", "on_no_checkpoint=fail"},
		{"finished step starts from the top", Config{RestartCount: 2, FailWithoutCheckpoint: true}, 2, 2, false, "finished in an earlier run", ""},
		{"finished step with no generation at all", Config{RestartCount: 1, FailWithoutCheckpoint: true}, 0, 0, false, "finished in an earlier run", ""},
		{"generation newer than the finish restores", Config{RestartCount: 2}, 2, 1, true, "restoring generation 2", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			step := t.TempDir()
			store, err := generations.Open(step, generations.Options{Keep: 5})
			require.NoError(t, err)
			defer store.Close()
			var newest generations.Generation
			for i := 0; i < tc.gens; i++ {
				newest = commitOne(t, store, step)
			}
			if tc.finishedAt >= 0 {
				a := &Agent{Store: store, Layout: Layout{StepDir: step}, Log: logrus.NewEntry(log)}
				if tc.finishedAt == tc.gens {
					a.markFinished()
				} else {
					require.NoError(t, os.WriteFile(filepath.Join(step, finishedFile), []byte("generation=1\n"), 0o600))
				}
			}
			kvs, err := restorePlan(tc.cfg, store, step, logrus.NewEntry(log), false)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, ErrNoCheckpoint)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			got := map[string]string{}
			for _, kv := range kvs {
				got[kv.Key] = kv.Value
			}
			if tc.wantRestore {
				assert.Equal(t, newest.Path, got[proto.KeyRestore])
			} else {
				assert.NotContains(t, got, proto.KeyRestore)
			}
			if tc.wantNote == "" {
				assert.Empty(t, kvs)
			} else {
				assert.Contains(t, got[proto.KeyRestoreNote], tc.wantNote)
			}
		})
	}
}

// A step that ended by itself as Slurm stopped the run before is not run again by the next
// run: its tasks end with the statuses they had. A later run, or another task count, is
// the usual finished step (from the top).
func TestRestorePlanAfterAnEndAtTheStop(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	for _, tc := range []struct {
		name      string
		restart   int
		tasks     int
		wantEnded string // "" no KeyEnded
		wantNote  string
	}{
		{"the next run ends at once", 3, 2, "0 1", "restart 3: this step ended by itself as Slurm stopped the run before (exit 0 1); it is not run again"},
		{"a run after that starts from the top", 4, 2, "", "finished in an earlier run; starting it again from the top"},
		{"another task count starts from the top", 3, 1, "", "finished in an earlier run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			step := t.TempDir()
			store, err := generations.Open(step, generations.Options{Keep: 5})
			require.NoError(t, err)
			defer store.Close()
			commitOne(t, store, step)
			a := &Agent{Store: store, Layout: Layout{StepDir: step}, Log: logrus.NewEntry(log), Config: Config{RestartCount: 2}}
			a.markFinishedAtStop([]int{0, 1})
			kvs, err := restorePlan(Config{RestartCount: tc.restart, Tasks: tc.tasks}, store, step, logrus.NewEntry(log), true)
			require.NoError(t, err)
			got := map[string]string{}
			for _, kv := range kvs {
				got[kv.Key] = kv.Value
			}
			assert.NotContains(t, got, proto.KeyRestore, "nothing is restored")
			assert.Equal(t, tc.wantEnded, got[proto.KeyEnded])
			assert.Contains(t, got[proto.KeyRestoreNote], tc.wantNote)
		})
	}
}

func TestParseArgsCheckpointPolicy(t *testing.T) {
	base := []string{"--protocol=1", "--job-id=7", "--step=batch"}
	for _, tc := range []struct {
		name string
		args []string
		want func(Config) bool
		err  string
	}{
		{"defaults", nil, func(c Config) bool {
			return c.LeadTime == 0 && c.MaxRuns == 1 && !c.Compress && !c.FailWithoutCheckpoint
		}, ""},
		{"all set", []string{"--lead-time=300", "--max-runs=4", "--total-time=86400", "--compress=true", "--on-no-checkpoint=fail"}, func(c Config) bool {
			return c.LeadTime == 5*time.Minute && c.MaxRuns == 4 && c.TotalTime == 24*time.Hour && c.Compress && c.FailWithoutCheckpoint
		}, ""},
		{"bad policy word", []string{"--on-no-checkpoint=retry"}, nil, `--on-no-checkpoint="retry": want restart or fail`},
		{"negative lead", []string{"--lead-time=-1"}, nil, "--lead-time=-1"},
		{"zero runs", []string{"--max-runs=0"}, nil, "--max-runs=0: want 1 or more"},
		{"no task on this node", []string{"--tasks=0"}, nil, "--tasks=0: want 1 or more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseArgs(append(append([]string{}, base...), tc.args...), io.Discard)
			if tc.err != "" {
				require.ErrorIs(t, err, ErrUsage)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.True(t, tc.want(c), "%+v", c)
		})
	}
}

// A step that finished in a run that was itself a restore, started again: the note says
// what likely requeued it (Slurm 24.05+ after a grace-time preemption); otherwise not.
func TestRestorePlanFinishedAfterRestoreHint(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	for _, tc := range []struct {
		name     string
		restored int // the run whose restore the history holds; 0: none
		restart  int
		hint     bool
	}{
		{"the run before restored", 1, 2, true},
		{"an older run restored", 1, 3, false},
		{"no restore in the history", 0, 2, false},
		{"first restart", 0, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			step := t.TempDir()
			store, err := generations.Open(step, generations.Options{Keep: 5})
			require.NoError(t, err)
			defer store.Close()
			commitOne(t, store, step)
			if tc.restored > 0 {
				require.NoError(t, history.Append(step, history.Event{Time: time.Now(), Kind: history.KindRestore,
					Restart: tc.restored, Generation: 1, Attempt: 1}))
			}
			a := &Agent{Store: store, Layout: Layout{StepDir: step}, Log: logrus.NewEntry(log)}
			a.markFinished()
			kvs, err := restorePlan(Config{RestartCount: tc.restart}, store, step, logrus.NewEntry(log), false)
			require.NoError(t, err)
			require.Len(t, kvs, 1)
			assert.Equal(t, proto.KeyRestoreNote, kvs[0].Key)
			assert.Contains(t, kvs[0].Value, "this step finished in an earlier run; starting it again from the top")
			if tc.hint {
				assert.Contains(t, kvs[0].Value, "requeued once more")
			} else {
				assert.NotContains(t, kvs[0].Value, "requeued once more")
			}
		})
	}
	assert.False(t, restoredInRun(t.TempDir(), 0))
}
