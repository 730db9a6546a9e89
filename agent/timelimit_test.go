package agent

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/generations"
	"github.com/slurm-dmtcp/slurm-dmtcp/coordinator"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

func TestLeadAt(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		info    slurm.Job
		lead    time.Duration
		started time.Time
		want    time.Time
		ok      bool
	}{
		{"no time limit", slurm.Job{StartTime: t0}, 5 * time.Minute, t0, time.Time{}, false},
		{"no lead", slurm.Job{StartTime: t0, EndTime: t0.Add(time.Hour)}, 0, t0, time.Time{}, false},
		{"lead before the end", slurm.Job{StartTime: t0, EndTime: t0.Add(time.Hour)}, 5 * time.Minute, t0, t0.Add(55 * time.Minute), true},
		{"lead longer than half the run", slurm.Job{StartTime: t0, EndTime: t0.Add(time.Minute)}, 5 * time.Minute, t0, t0.Add(30 * time.Second), true},
		{"agent started before Slurm's start time", slurm.Job{StartTime: t0.Add(time.Second), EndTime: t0.Add(time.Hour)}, time.Minute, t0, t0.Add(59 * time.Minute), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at, ok := leadAt(tc.info, tc.lead, tc.started)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, at)
		})
	}
}

func TestContinueDecision(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		run   int
		saved time.Duration
		ok    bool
		why   string
	}{
		{"not asked", Config{MaxRuns: 1}, 1, time.Minute, false, "not asked for"},
		{"runs left", Config{MaxRuns: 3}, 2, time.Minute, true, ""},
		{"last run", Config{MaxRuns: 3}, 3, time.Minute, false, "run 3 of at most 3"},
		{"total not reached", Config{MaxRuns: 10, TotalTime: time.Hour}, 2, 40 * time.Minute, true, ""},
		{"total reached", Config{MaxRuns: 10, TotalTime: time.Hour}, 2, 61 * time.Minute, false, "saved 1h1m0s, the 1h0m0s asked for"},
		{"total but runs used up", Config{MaxRuns: 2, TotalTime: time.Hour}, 2, time.Minute, false, "run 2 of at most 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := continueDecision(tc.cfg, tc.run, tc.saved)
			assert.Equal(t, tc.ok, ok)
			assert.Contains(t, why, tc.why)
		})
	}
}

func TestLedgerRoundTrip(t *testing.T) {
	dir := t.TempDir()
	l, err := ReadLedger(dir)
	require.NoError(t, err)
	assert.Equal(t, Ledger{}, l, "no file: empty ledger")
	require.NoError(t, WriteLedger(dir, Ledger{Runs: 2, Saved: 90 * time.Second}))
	l, err = ReadLedger(dir)
	require.NoError(t, err)
	assert.Equal(t, Ledger{Runs: 2, Saved: 90 * time.Second}, l)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ledgerFile), []byte("runs=lots\n"), 0o600))
	_, err = ReadLedger(dir)
	assert.ErrorContains(t, err, `runs="lots" is not a count`)
}

// fakeCoord checkpoints by writing one image into the checkpoint folder.
type fakeCoord struct {
	dir     string
	mu      sync.Mutex
	noPeers bool
	// killFails: CheckpointAndKill fails, and the computation is gone after it.
	killFails bool
	ckpts     int
	kills     int
	done      chan struct{}
	quitOnce  sync.Once
	// quitDelay: how long after Quit the coordinator's exit is seen (Done closes).
	quitDelay time.Duration
	// settled, when set, is called by Settle.
	settled func()
}

func (f *fakeCoord) Status(context.Context) (coordinator.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.noPeers {
		return coordinator.Status{Running: true}, nil
	}
	return coordinator.Status{NumPeers: 1, Running: true}, nil
}
func (f *fakeCoord) Checkpoint(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ckpts++
	return os.WriteFile(filepath.Join(f.dir, "ckpt_bash_1.dmtcp"), bytes.Repeat([]byte{byte(f.ckpts)}, 4096), 0o600)
}
func (f *fakeCoord) CheckpointAndKill(ctx context.Context) error {
	f.mu.Lock()
	if f.killFails {
		f.noPeers = true
		f.mu.Unlock()
		return errors.New("checkpoint failed")
	}
	f.mu.Unlock()
	if err := f.Checkpoint(ctx); err != nil {
		return err
	}
	return f.Kill(ctx)
}
func (f *fakeCoord) Settle(context.Context, time.Duration) string {
	if f.settled != nil {
		f.settled()
	}
	return ""
}
func (f *fakeCoord) Kill(context.Context) error { f.mu.Lock(); f.kills++; f.mu.Unlock(); return nil }
func (f *fakeCoord) Quit(context.Context) error {
	f.quitOnce.Do(func() { time.AfterFunc(f.quitDelay, func() { close(f.done) }) })
	return nil
}
func (f *fakeCoord) WaitUp(context.Context) error { return nil }
func (f *fakeCoord) Done() <-chan struct{}        { return f.done }

type fakeJob struct {
	info      slurm.Job
	mu        sync.Mutex
	requeues  int
	requeueTo error
}

func (j *fakeJob) Info(context.Context) (slurm.Job, error) { return j.info, nil }
func (j *fakeJob) Requeue(context.Context) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.requeues++
	return j.requeueTo
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) Close() error   { return nil }
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// newTestAgent builds an agent on temporary folders with a fake coordinator and job.
func newTestAgent(t *testing.T, cfg Config, job *fakeJob) (*Agent, *fakeCoord, *lockedBuf) {
	step := t.TempDir()
	ckpt := filepath.Join(step, generations.CurrentDirName)
	require.NoError(t, os.MkdirAll(ckpt, 0o700))
	store, err := generations.Open(step, generations.Options{Keep: 2})
	require.NoError(t, err)
	coord := &fakeCoord{dir: ckpt, done: make(chan struct{})}
	progress := &lockedBuf{}
	log := logrus.New()
	log.SetOutput(io.Discard)
	a := &Agent{Config: cfg, Layout: Layout{StepDir: step, CkptDir: ckpt, RunDir: t.TempDir()}, Coord: coord, Store: store,
		Log: logrus.NewEntry(log), Job: job, Started: time.Now(), CheckpointTimeout: 10 * time.Second,
		Progress: func() io.WriteCloser { return progress }}
	a.Meta.JobID, a.Meta.StepID, a.Meta.User, a.Meta.Node, a.Meta.DMTCPVersion = 7, "batch", "u", "n", "5.0"
	require.NoError(t, a.Life.To(Running)) // as Serve puts a step that restores nothing
	return a, coord, progress
}

// Before the time limit the agent checkpoints, records the run and requeues the job when
// the job asked to continue; it says so on the job's error output.
func TestServeCheckpointsAndRequeuesBeforeTheTimeLimit(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cfg         Config
		requeueErr  error
		wantRequeue int
		wantLine    string
		wantLedger  Ledger
	}{
		{"continues", Config{JobID: "7", Step: "batch", LeadTime: time.Hour, MaxRuns: 3}, nil, 1, "job requeued to continue (run 1 done, at most 3 runs)", Ledger{Runs: 1}},
		{"last run stops at its limit", Config{JobID: "7", Step: "batch", LeadTime: time.Hour, MaxRuns: 3, RestartCount: 2}, nil, 0, "the job stops at its limit (this was run 3 of at most 3)", Ledger{}},
		{"no continuation asked", Config{JobID: "7", Step: "batch", LeadTime: time.Hour, MaxRuns: 1}, nil, 0, "not asked for", Ledger{}},
		{"requeue refused", Config{JobID: "7", Step: "batch", LeadTime: time.Hour, MaxRuns: 3}, errors.New("scontrol requeue 7: Access denied"), 1, "the requeue failed (scontrol requeue 7: Access denied)", Ledger{Runs: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now()
			// The end is 400 ms away and the lead an hour: the checkpoint comes at once
			// (half of the run, 200 ms).
			job := &fakeJob{info: slurm.Job{StartTime: now, EndTime: now.Add(400 * time.Millisecond)}, requeueTo: tc.requeueErr}
			a, coord, progress := newTestAgent(t, tc.cfg, job)
			a.Started = now
			lifeline, closeLifeline := io.Pipe()
			errc := make(chan error, 1)
			go func() { errc <- a.Serve(context.Background(), "h", 1, io.Discard, lifeline) }()
			require.Eventually(t, func() bool { return strings.Contains(progress.String(), "time limit in") }, 5*time.Second, 20*time.Millisecond)
			closeLifeline.Close()
			require.NoError(t, <-errc)
			assert.Contains(t, progress.String(), tc.wantLine)
			assert.Contains(t, progress.String(), "checkpoint (time-limit) generation 1")
			assert.Equal(t, tc.wantRequeue, job.requeues)
			assert.Equal(t, 1, coord.ckpts)
			l, err := ReadLedger(a.Layout.StepDir)
			require.NoError(t, err)
			assert.Equal(t, tc.wantLedger.Runs, l.Runs)
			gens, err := a.Store.List()
			require.NoError(t, err)
			require.Len(t, gens, 1)
			assert.Equal(t, "time-limit", string(gens[0].Reason))
		})
	}
}

// A step is marked finished (a later run starts it from the top) only when every task of
// the node reported that its program ended by itself; a task killed by a signal, a launcher
// killed with it or a torn record leave the step to be restored.
func TestServeMarksFinishedOnlyOnProof(t *testing.T) {
	for _, tc := range []struct {
		name         string
		tasks        int
		records      map[int]string // local id: content of task-exited.<id>
		wantFinished bool
	}{
		{"the task ended by itself", 1, map[int]string{0: "0\n"}, true},
		{"it failed by itself", 1, map[int]string{0: "3\n"}, true},
		{"both tasks ended by themselves", 2, map[int]string{0: "0\n", 1: "0\n"}, true},
		{"no record: killed with its launcher", 1, nil, false},
		{"one of two tasks without a record", 2, map[int]string{1: "0\n"}, false},
		{"a torn record", 1, map[int]string{0: ""}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _, _ := newTestAgent(t, Config{JobID: "7", Step: "batch", Tasks: tc.tasks}, nil)
			for id, body := range tc.records {
				require.NoError(t, os.WriteFile(filepath.Join(a.Layout.RunDir, proto.TaskExitedFile(id)), []byte(body), 0o600))
			}
			lifeline, closeLifeline := io.Pipe()
			errc := make(chan error, 1)
			go func() { errc <- a.Serve(context.Background(), "h", 1, io.Discard, lifeline) }()
			closeLifeline.Close()
			require.NoError(t, <-errc)
			n, err := finishedAt(a.Layout.StepDir)
			require.NoError(t, err)
			assert.Equal(t, tc.wantFinished, n >= 0, "finished marker")
		})
	}
}

// A stop whose checkpoint finds no process left, or that is skipped and leaves the programs
// running, with every task's program recorded as ended by itself, is a finish at the stop:
// the marker names this run and the tasks' exit statuses, so that the next run does not run
// the step again. Anything less is a stop.
func TestServeStopThatFindsNothing(t *testing.T) {
	for _, tc := range []struct {
		name       string
		noPeers    bool
		killFails  bool // the stop's checkpoint fails and ends the computation
		full       bool // the checkpoint folder has no room for the checkpoint
		records    map[int]string
		wantExits  []int  // nil: not finished
		wantMarker string // for the task launchers: their programs' own ends count
	}{
		{"the programs had ended by themselves", true, false, false, map[int]string{0: "0\n", 1: "3\n"}, []int{0, 3}, proto.StopFoundNothingFile},
		{"one task did not end by itself", true, false, false, map[int]string{0: "0\n"}, nil, proto.StopFoundNothingFile},
		{"the stop checkpointed the computation", false, false, false, map[int]string{0: "0\n", 1: "0\n"}, nil, ""},
		{"the stop's checkpoint failed and ended the computation", false, true, false, map[int]string{0: "0\n", 1: "0\n"}, nil, ""},
		{"the programs had ended, the disk is full", true, false, true, map[int]string{0: "0\n", 1: "0\n"}, []int{0, 0}, proto.StopFoundNothingFile},
		{"the disk is full, the programs end in Slurm's kill wait", false, false, true, map[int]string{0: "0\n", 1: "2\n"}, []int{0, 2}, proto.StopSkippedFile},
		{"the disk is full, Slurm kills a program", false, false, true, map[int]string{1: "0\n"}, nil, proto.StopSkippedFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, coord, _ := newTestAgent(t, Config{JobID: "7", Step: "batch", Tasks: 2, RestartCount: 4}, &fakeJob{})
			coord.noPeers, coord.killFails = tc.noPeers, tc.killFails
			if tc.full {
				a.Space = func() (Space, error) { return Space{Need: 512 << 20, Free: 100 << 20}, nil }
			}
			sigs := make(chan os.Signal, 4)
			a.Signals = sigs
			lifeline, closeLifeline := io.Pipe()
			errc := make(chan error, 1)
			go func() { errc <- a.Serve(context.Background(), "h", 1, io.Discard, lifeline) }()
			sigs <- syscall.SIGTERM
			require.Eventually(t, func() bool {
				_, err := os.Stat(filepath.Join(a.Layout.RunDir, proto.StoppedFile))
				return err == nil
			}, 5*time.Second, 10*time.Millisecond, "the stop checkpoint ends")
			for _, m := range []string{proto.StopFoundNothingFile, proto.StopSkippedFile} {
				_, err := os.Stat(filepath.Join(a.Layout.RunDir, m))
				assert.Equal(t, tc.wantMarker == m, err == nil, "%s", m)
			}
			for id, body := range tc.records { // the launchers report once they see the outcome
				require.NoError(t, os.WriteFile(filepath.Join(a.Layout.RunDir, proto.TaskExitedFile(id)), []byte(body), 0o600))
			}
			closeLifeline.Close()
			require.NoError(t, <-errc)
			if tc.wantMarker != "" {
				assert.Zero(t, coord.kills, "the agent left the programs to end by themselves")
			}
			f, err := readFinish(a.Layout.StepDir)
			require.NoError(t, err)
			if tc.wantExits == nil {
				assert.Equal(t, -1, f.Generation, "not finished")
				return
			}
			assert.Equal(t, finish{Generation: 0, StopRun: 4, Exits: tc.wantExits}, f)
			assert.Equal(t, Finished, a.Life.Phase())
		})
	}
}

// A SIGTERM is a checkpoint that ends the computation, except the first one of a
// preemption in a step on one node: Slurm signals such a step at once but the batch script
// only when the grace time ends, so the step is checkpointed and runs on; the next SIGTERM
// (at the end of the grace time) checkpoints and ends it.
func TestServeSigtermMeaning(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       Config
		preempted bool
		signals   int
		wantKills int
		wantLine  string
	}{
		{"step, not preempted", Config{JobID: "7", Step: "0", Tasks: 1}, false, 1, 1, ""},
		{"batch step, preempted", Config{JobID: "7", Step: "batch", Tasks: 1}, true, 1, 1, ""},
		{"step, preempted: runs on", Config{JobID: "7", Step: "0", Tasks: 1}, true, 1, 0, "preempted: checkpoint taken; the step runs on"},
		{"step, preempted, grace time over", Config{JobID: "7", Step: "0", Tasks: 1}, true, 2, 1, "preempted: checkpoint taken; the step runs on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := &fakeJob{}
			if tc.preempted {
				job.info.PreemptTime = time.Now()
			}
			a, coord, progress := newTestAgent(t, tc.cfg, job)
			sigs := make(chan os.Signal, 4)
			a.Signals = sigs
			lifeline, closeLifeline := io.Pipe()
			errc := make(chan error, 1)
			go func() { errc <- a.Serve(context.Background(), "h", 1, io.Discard, lifeline) }()
			for i := 1; i <= tc.signals; i++ {
				sigs <- syscall.SIGTERM
				require.Eventually(t, func() bool {
					return strings.Count(progress.String(), "checkpoint (signal) generation") == i
				}, 5*time.Second, 10*time.Millisecond, "checkpoint %d", i)
			}
			time.Sleep(50 * time.Millisecond)
			coord.mu.Lock()
			assert.Equal(t, tc.wantKills, coord.kills, "the computation ended")
			assert.Equal(t, tc.signals, coord.ckpts)
			coord.mu.Unlock()
			if tc.wantLine != "" {
				assert.Contains(t, progress.String(), tc.wantLine)
			}
			closeLifeline.Close()
			require.NoError(t, <-errc)
		})
	}
}

// A periodic checkpoint due while the step restores, or while its completed restore is
// watched, is skipped, and the next ones come once it runs: the timer is armed again, not
// lost. A checkpoint the job asks for is taken while the restore is watched.
func TestServePeriodicAfterRestoring(t *testing.T) {
	a, coord, progress := newTestAgent(t, Config{JobID: "7", Step: "batch", Interval: 50 * time.Millisecond}, &fakeJob{})
	require.NoError(t, a.Life.To(Restoring))
	lifeline, closeLifeline := io.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- a.Serve(context.Background(), "h", 1, io.Discard, lifeline) }()
	time.Sleep(200 * time.Millisecond) // several ticks while restoring
	coord.mu.Lock()
	assert.Equal(t, 0, coord.ckpts, "no checkpoint while restoring")
	coord.mu.Unlock()
	a.settling.Store(true) // the restore completed and is watched
	require.NoError(t, a.Life.To(Running))
	time.Sleep(200 * time.Millisecond)
	coord.mu.Lock()
	assert.Equal(t, 0, coord.ckpts, "no periodic checkpoint while the restore is watched")
	coord.mu.Unlock()
	_, err := a.Checkpoint(context.Background(), "request")
	assert.NoError(t, err, "a checkpoint the job asks for is taken")
	a.settling.Store(false)
	require.Eventually(t, func() bool {
		return strings.Contains(progress.String(), "checkpoint (periodic) generation 3")
	}, 5*time.Second, 10*time.Millisecond)
	closeLifeline.Close()
	require.NoError(t, <-errc)
}
