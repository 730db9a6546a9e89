package agent

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ctlsrv "github.com/slurm-dmtcp/slurm-dmtcp/agent/control"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
	ctl "github.com/slurm-dmtcp/slurm-dmtcp/proto/control"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto/manifest"
)

// serveWithControl runs Serve on a test agent and returns a client for its control socket,
// found through the ready message as the tasks find it.
func serveWithControl(t *testing.T, cfg Config) (*Agent, *fakeCoord, *ctl.Client) {
	a, coord, _ := newTestAgent(t, cfg, nil)
	dir, err := os.MkdirTemp("", "ag") // short: sun_path is 108 bytes
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	a.Layout.RunDir = dir
	a.controlGuard = func(ctlsrv.Cred) error { return nil } // the test process is in no job
	lifeline, closeLifeline := io.Pipe()
	readyR, readyW := io.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- a.Serve(context.Background(), "node1", 4242, readyW, lifeline) }()
	kv, err := proto.ReadMessage(readyR)
	require.NoError(t, err)
	go func() { _, _ = io.Copy(io.Discard, readyR) }()
	t.Cleanup(func() {
		closeLifeline.Close()
		require.NoError(t, <-errc)
	})
	require.Equal(t, dir+"/"+ctl.SocketName, kv[proto.KeyControlSocket], "the ready message names the socket")
	c, err := ctl.NewClient(kv[proto.KeyControlSocket])
	require.NoError(t, err)
	return a, coord, c
}

func do(t *testing.T, c *ctl.Client, op string, args, res any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Do(ctx, op, args, res)
}

func TestControlRequestsAgainstServe(t *testing.T) {
	cfg := Config{JobID: "7", Step: "batch", RestartCount: 2, MinInterval: time.Minute}
	a, coord, c := serveWithControl(t, cfg)

	var h ctl.Hello
	require.NoError(t, do(t, c, ctl.OpPing, nil, &h))
	assert.Equal(t, ctl.Hello{Protocol: 1, JobID: "7", Step: "batch", RestartCount: 2, AgentPID: os.Getpid(), Started: h.Started}, h)

	var st ctl.Status
	require.NoError(t, do(t, c, ctl.OpStatus, nil, &st))
	assert.Equal(t, ctl.StateRunning, st.State)
	assert.Equal(t, ctl.Coordinator{Host: "node1", Port: 4242}, st.Coordinator)
	assert.Equal(t, 1, st.Processes)
	assert.Equal(t, int64(0), st.IntervalS)
	assert.Nil(t, st.NextCheckpoint)
	assert.Empty(t, st.Generations.Generations)

	// A blocking checkpoint becomes generation 1.
	var r ctl.CheckpointResult
	require.NoError(t, do(t, c, ctl.OpCheckpoint, ctl.CheckpointArgs{Wait: true}, &r))
	assert.Equal(t, ctl.TicketDone, r.State)
	assert.Equal(t, 1, r.Generation)
	assert.Equal(t, int64(4096), r.Bytes)

	// One that does not wait gives a ticket to wait for.
	require.NoError(t, do(t, c, ctl.OpCheckpoint, nil, &r))
	assert.Equal(t, ctl.TicketQueued, r.State)
	require.NoError(t, do(t, c, ctl.OpWait, ctl.WaitArgs{Ticket: r.Ticket}, &r))
	assert.Equal(t, 2, r.Generation)
	assert.Equal(t, 2, coord.ckpts)

	var g ctl.Generations
	require.NoError(t, do(t, c, ctl.OpGenerations, nil, &g))
	require.Len(t, g.Generations, 2)
	assert.Equal(t, "request", g.Generations[1].Reason)
	assert.Equal(t, 2, g.Keep)

	require.NoError(t, do(t, c, ctl.OpStatus, nil, &st))
	require.NotNil(t, st.LastCheckpoint)
	assert.True(t, st.LastCheckpoint.OK)
	assert.Equal(t, 2, st.LastCheckpoint.Generation)
	assert.Equal(t, "request", st.LastCheckpoint.Reason)

	// Interval: the site's minimum holds; a valid one arms the timer.
	err := do(t, c, ctl.OpInterval, ctl.IntervalArgs{Interval: ptrDur(30 * time.Second)}, nil)
	var pe *ctl.Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, ctl.CodePolicy, pe.Code)
	assert.Contains(t, pe.Message, "shorter than the site's min_interval 60s")

	var ir ctl.IntervalResult
	require.NoError(t, do(t, c, ctl.OpInterval, ctl.IntervalArgs{Interval: ptrDur(2 * time.Hour)}, &ir))
	assert.Equal(t, ctl.IntervalResult{OldS: 0, IntervalS: 7200, NextCheckpoint: ir.NextCheckpoint}, ir)
	require.NotNil(t, ir.NextCheckpoint)
	assert.WithinDuration(t, time.Now().Add(2*time.Hour), *ir.NextCheckpoint, 5*time.Second)
	require.NoError(t, do(t, c, ctl.OpStatus, nil, &st))
	assert.Equal(t, int64(7200), st.IntervalS)

	err = do(t, c, ctl.OpWait, ctl.WaitArgs{Ticket: 99}, nil)
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, ctl.CodeNotFound, pe.Code)
	_ = a
}

// A new interval re-arms the periodic timer while Serve waits: checkpoints follow it.
func TestControlIntervalDrivesPeriodicCheckpoints(t *testing.T) {
	cfg := Config{JobID: "7", Step: "batch", MinInterval: time.Second}
	a, coord, c := serveWithControl(t, cfg)
	require.NoError(t, do(t, c, ctl.OpInterval, ctl.IntervalArgs{Interval: ptrDur(time.Second)}, nil))
	require.Eventually(t, func() bool {
		gens, err := a.Store.List()
		return err == nil && len(gens) >= 1 && gens[0].Reason == "periodic"
	}, 10*time.Second, 50*time.Millisecond)
	require.NoError(t, do(t, c, ctl.OpInterval, ctl.IntervalArgs{Interval: ptrDur(0)}, nil))
	coord.mu.Lock()
	n := coord.ckpts
	coord.mu.Unlock()
	time.Sleep(2500 * time.Millisecond)
	coord.mu.Lock()
	defer coord.mu.Unlock()
	assert.LessOrEqual(t, coord.ckpts, n+1, "interval 0 stops periodic checkpoints (one may have been under way)")
}

// A failed checkpoint (nothing under DMTCP) reaches the client as "failed".
func TestControlCheckpointFailure(t *testing.T) {
	_, coord, c := serveWithControl(t, Config{JobID: "7", Step: "batch"})
	coord.mu.Lock()
	coord.noPeers = true
	coord.mu.Unlock()
	err := do(t, c, ctl.OpCheckpoint, ctl.CheckpointArgs{Wait: true}, nil)
	var pe *ctl.Error
	require.True(t, errors.As(err, &pe), "error %v", err)
	assert.Equal(t, ctl.CodeFailed, pe.Code)
	assert.Contains(t, pe.Message, "no process under DMTCP")
}

func ptrDur(d time.Duration) *ctl.Duration { v := ctl.Duration(d); return &v }

// After Slurm's SIGTERM checkpoint the step is ending: status says so and requests for
// checkpoints or a new interval are refused with "stopping".
func TestControlStoppingAfterSIGTERMCheckpoint(t *testing.T) {
	a, _, c := serveWithControl(t, Config{JobID: "7", Step: "batch"})
	_, err := a.Checkpoint(context.Background(), manifest.ReasonSignal) // what Serve does on SIGTERM
	require.NoError(t, err)
	var st ctl.Status
	require.NoError(t, do(t, c, ctl.OpStatus, nil, &st))
	assert.Equal(t, ctl.StateStopping, st.State)
	require.NotNil(t, st.LastCheckpoint)
	assert.Equal(t, "signal", st.LastCheckpoint.Reason)
	for _, tc := range []struct {
		op   string
		args any
	}{{ctl.OpCheckpoint, ctl.CheckpointArgs{Wait: true}}, {ctl.OpInterval, ctl.IntervalArgs{Interval: ptrDur(time.Hour)}}} {
		err := do(t, c, tc.op, tc.args, nil)
		var pe *ctl.Error
		require.ErrorAs(t, err, &pe, tc.op)
		assert.Equal(t, ctl.CodeStopping, pe.Code, tc.op)
	}
}

// Without a control socket (its path too long for a Unix socket) the step runs as before:
// the ready message has no control_socket and checkpoints go on.
func TestServeWithoutControlSocket(t *testing.T) {
	a, coord, _ := newTestAgent(t, Config{JobID: "7", Step: "batch"}, nil)
	a.Layout.RunDir = filepath.Join(t.TempDir(), strings.Repeat("x", 120))
	lifeline, closeLifeline := io.Pipe()
	readyR, readyW := io.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- a.Serve(context.Background(), "h", 1, readyW, lifeline) }()
	kv, err := proto.ReadMessage(readyR)
	require.NoError(t, err)
	go func() { _, _ = io.Copy(io.Discard, readyR) }()
	_, ok := kv[proto.KeyControlSocket]
	assert.False(t, ok, "no socket, no ready key")
	_, err = a.Checkpoint(context.Background(), manifest.ReasonPeriodic)
	require.NoError(t, err)
	assert.Equal(t, 1, coord.ckpts)
	closeLifeline.Close()
	require.NoError(t, <-errc)
}

func TestParseArgsMinInterval(t *testing.T) {
	base := []string{"--protocol=1", "--job-id=7", "--step=batch"}
	for _, tc := range []struct {
		name string
		args []string
		want time.Duration
		err  string
	}{
		{"plugin default when absent", nil, time.Minute, ""},
		{"from the plugin", []string{"--min-interval=5"}, 5 * time.Second, ""},
		{"none", []string{"--min-interval=0"}, 0, ""},
		{"negative", []string{"--min-interval=-1"}, 0, "--min-interval=-1: want seconds >= 0"},
		{"not a number", []string{"--min-interval=1m"}, 0, `invalid value "1m" for flag -min-interval`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseArgs(append(append([]string{}, base...), tc.args...), io.Discard)
			if tc.err != "" {
				require.ErrorIs(t, err, ErrUsage)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, c.MinInterval)
		})
	}
}
