package agent

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// The finished marker is taken for a finish only when it is exactly what markFinished
// writes: an empty or torn one (a crash while it was written, a full disk) is not.
func TestFinishedAtReadsStrictly(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    *string
		want    int
		wantErr string
	}{
		{"none", nil, -1, ""},
		{"whole", ptr("generation=4\ntime=2026-12-06T10:00:00Z\n"), 4, ""},
		{"no generation yet", ptr("generation=0\ntime=2026-12-06T10:00:00Z\n"), 0, ""},
		{"empty", ptr(""), -1, "want the two lines"},
		{"cut short", ptr("generation=4\n"), -1, "want the two lines"},
		{"cut in the time", ptr("generation=4\ntime=2026-12\n"), -1, "RFC 3339"},
		{"negative", ptr("generation=-1\ntime=2026-12-06T10:00:00Z\n"), -1, "generation=N"},
		{"not a number", ptr("generation=x\ntime=2026-12-06T10:00:00Z\n"), -1, "generation=N"},
		{"ended as Slurm stopped it", ptr("generation=4\ntime=2026-12-06T10:00:00Z\nstopped_run=2\nexits=0 1\n"), 4, ""},
		{"stop without exits", ptr("generation=4\ntime=2026-12-06T10:00:00Z\nstopped_run=2\nexits=\n"), -1, "exits=S"},
		{"stop with a signal's status", ptr("generation=4\ntime=2026-12-06T10:00:00Z\nstopped_run=2\nexits=137\n"), -1, "exits=S"},
		{"stop cut short", ptr("generation=4\ntime=2026-12-06T10:00:00Z\nstopped_run=2\n"), -1, "want the two lines"},
		{"stop's run not a number", ptr("generation=4\ntime=2026-12-06T10:00:00Z\nstopped_run=x\nexits=0\n"), -1, "stopped_run=N"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.body != nil {
				require.NoError(t, os.WriteFile(filepath.Join(dir, finishedFile), []byte(*tc.body), 0o600))
			}
			n, err := finishedAt(dir)
			assert.Equal(t, tc.want, n)
			if tc.wantErr == "" {
				assert.NoError(t, err)
			} else {
				assert.ErrorContains(t, err, tc.wantErr)
			}
		})
	}
}

// What markFinishedAtStop writes reads back as it was meant; markFinished's has no stop.
func TestFinishMarkerRoundTrip(t *testing.T) {
	a, _, _ := newTestAgent(t, Config{RestartCount: 3, Tasks: 2}, nil)
	a.markFinishedAtStop([]int{0, 2})
	f, err := readFinish(a.Layout.StepDir)
	require.NoError(t, err)
	assert.Equal(t, finish{Generation: 0, StopRun: 3, Exits: []int{0, 2}}, f)
	a.markFinished()
	f, err = readFinish(a.Layout.StepDir)
	require.NoError(t, err)
	assert.Equal(t, finish{Generation: 0, StopRun: -1}, f)
}

func ptr(s string) *string { return &s }

// Node 0 of a step across nodes takes the step for finished only when every other node
// said, for this run, that its tasks ended by themselves.
func TestOthersEnded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[int]string
		want  string // "" finished, else a part of the reason
	}{
		{"every node ended by itself", map[int]string{1: string(nodeEnded("r1", "")), 2: string(nodeEnded("r1", ""))}, ""},
		{"a node's task was killed", map[int]string{1: string(nodeEnded("r1", "")), 2: string(nodeEnded("r1", "1 of the 2 tasks"))}, "node 2 of the step: 1 of the 2 tasks"},
		{"a node said nothing", map[int]string{1: string(nodeEnded("r1", ""))}, "node 2 of the step did not say"},
		{"a node's word is of an earlier run", map[int]string{1: string(nodeEnded("r1", "")), 2: string(nodeEnded("r0", ""))}, "node 2 of the step did not say"},
		{"a torn word", map[int]string{1: "run=r1\n", 2: string(nodeEnded("r1", ""))}, "node 1 of the step: unreadable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for k, body := range tc.files {
				require.NoError(t, os.WriteFile(filepath.Join(dir, proto.NodeEndedFile(k)), []byte(body), 0o600))
			}
			got := othersEnded(context.Background(), dir, "r1", 3, 100*time.Millisecond)
			if tc.want == "" {
				assert.Empty(t, got)
			} else {
				assert.Contains(t, got, tc.want)
			}
		})
	}
}

// A step whose tasks all ended by themselves is finished (a later run starts it from the
// top), unless Slurm's SIGTERM came as they ended, before the agent saw their end or while
// the coordinator exits: then it ended as Slurm stopped it, and the next run does not run
// it again. A SIGTERM after the coordinator's exit is too late to count; a step of a
// preempted job (Slurm runs its batch script again) is finished either way.
func TestServeStepThatEndsAsSlurmStopsIt(t *testing.T) {
	for _, tc := range []struct {
		name      string
		step      string
		preempted bool
		sigterm   time.Duration // after the lifeline closes; -1: none
		quitDelay time.Duration
		atStop    bool
	}{
		{"no SIGTERM", "batch", false, -1, 0, false},
		{"SIGTERM with the tasks' end", "batch", false, 0, 0, true},
		{"SIGTERM while the coordinator exits", "batch", false, 100 * time.Millisecond, 300 * time.Millisecond, true},
		{"SIGTERM after the coordinator exited", "batch", false, 300 * time.Millisecond, 50 * time.Millisecond, false},
		{"SIGTERM of a preemption", "0", true, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := &fakeJob{}
			if tc.preempted {
				job.info.PreemptTime = time.Now()
			}
			a, coord, _ := newTestAgent(t, Config{JobID: "7", Step: tc.step, Tasks: 2, RestartCount: 3}, job)
			coord.quitDelay, coord.noPeers = tc.quitDelay, true // the tasks are gone
			sigs := make(chan os.Signal, 4)
			a.Signals = sigs
			lifeline, closeLifeline := io.Pipe()
			errc := make(chan error, 1)
			go func() { errc <- a.Serve(context.Background(), "h", 1, io.Discard, lifeline) }()
			for id, code := range []string{"0\n", "4\n"} {
				require.NoError(t, os.WriteFile(filepath.Join(a.Layout.RunDir, proto.TaskExitedFile(id)), []byte(code), 0o600))
			}
			closeLifeline.Close()
			if tc.sigterm >= 0 {
				time.Sleep(tc.sigterm)
				sigs <- syscall.SIGTERM
			}
			require.NoError(t, <-errc)
			f, err := readFinish(a.Layout.StepDir)
			require.NoError(t, err)
			assert.Equal(t, Finished, a.Life.Phase())
			if tc.atStop {
				assert.Equal(t, finish{Generation: 0, StopRun: 3, Exits: []int{0, 4}}, f)
			} else {
				assert.Equal(t, finish{Generation: 0, StopRun: -1}, f, "finished, not at a stop")
			}
		})
	}
}
