package agent

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/coordinator"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto/manifest"
)

func TestConfigAcrossNodes(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		cfg                     Config
		across, member, perRank bool
		runDir                  string
	}{
		{"batch step", Config{JobID: "7", Step: "batch", Nodes: 2, StepTasks: 2}, false, false, false, "7.batch"},
		{"one-node step of one task", Config{JobID: "7", Step: "0", Nodes: 1, StepTasks: 1}, false, false, false, "7.step-0"},
		{"one-node step of two tasks", Config{JobID: "7", Step: "0", Nodes: 1, StepTasks: 2}, false, false, true, "7.step-0"},
		{"node 0 of a step across nodes", Config{JobID: "7", Step: "1", Nodes: 2}, true, false, true, "7.step-1"},
		{"node 2 of a step across nodes", Config{JobID: "7", Step: "1", Nodes: 3, NodeID: 2}, true, true, true, "7.step-1.node-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.perRank, tc.cfg.PerRank())
			assert.Equal(t, tc.across, tc.cfg.AcrossNodes())
			assert.Equal(t, tc.member, tc.cfg.Member())
			assert.Equal(t, tc.runDir, tc.cfg.RunDirName())
		})
	}
}

func TestCoordAddrRoundTrip(t *testing.T) {
	for _, tc := range []CoordAddr{
		{JobID: "500001", Step: "0", RestartCount: 1, Run: "42-1", Host: "10.79.0.11", Port: 40001,
			Extra: []proto.KV{{Key: proto.KeyRestore, Value: "/h/.slurm-dmtcp/500001/step-0/gen-000002"},
				{Key: proto.KeyRestoreNote, Value: "restart 1: restoring generation 2 | note"}, {Key: proto.KeyCompress, Value: "off"}}},
		{JobID: "500001", Step: "0", RestartCount: 0, Run: "42-1", Error: "DMTCP not found"},
	} {
		got, err := ParseCoordAddr(tc.Marshal())
		require.NoError(t, err)
		assert.Equal(t, tc, got)
	}
	// Only the keys meant for the members are written; a newline cannot split a value.
	c := CoordAddr{JobID: "1", Step: "0", Run: "r", Host: "h", Port: 1,
		Extra: []proto.KV{{Key: proto.KeyControlSocket, Value: "/x"}, {Key: proto.KeyRestoreNote, Value: "a\nport=9"}}}
	got, err := ParseCoordAddr(c.Marshal())
	require.NoError(t, err)
	assert.Equal(t, []proto.KV{{Key: proto.KeyRestoreNote, Value: "a port=9"}}, got.Extra)
	assert.Equal(t, 1, got.Port)
}

func TestParseCoordAddrRejects(t *testing.T) {
	for name, in := range map[string]string{
		"no run":         "job_id=1\nstep=0\nrestart_count=0\ncoord_host=h\ncoord_port=1\n",
		"no port":        "job_id=1\nstep=0\nrestart_count=0\nrun=r\ncoord_host=h\n",
		"bad port":       "job_id=1\nstep=0\nrestart_count=0\nrun=r\ncoord_host=h\ncoord_port=70000\n",
		"no host":        "job_id=1\nstep=0\nrestart_count=0\nrun=r\ncoord_port=5\n",
		"bad count":      "job_id=1\nstep=0\nrestart_count=x\nrun=r\ncoord_host=h\ncoord_port=5\n",
		"malformed line": "job_id=1\nstep\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseCoordAddr([]byte(in))
			assert.Error(t, err)
		})
	}
}

func TestWaitCoordAddr(t *testing.T) {
	this := CoordAddr{JobID: "9", Step: "3", RestartCount: 1, Run: "r2", Host: "10.0.0.1", Port: 555}
	for _, tc := range []struct {
		name    string
		files   []CoordAddr // written in turn, 30 ms apart
		want    CoordAddr
		wantErr string
	}{
		{"this run", []CoordAddr{this}, this, ""},
		{"an earlier run's file, then this run's", []CoordAddr{{JobID: "9", Step: "3", RestartCount: 0, Run: "r1", Host: "10.0.0.2", Port: 1}, this}, this, ""},
		{"the leader failed", []CoordAddr{{JobID: "9", Step: "3", RestartCount: 1, Run: "r2", Error: "no DMTCP"}}, CoordAddr{}, "node 0 of the step failed: no DMTCP"},
		{"another step only", []CoordAddr{{JobID: "9", Step: "4", RestartCount: 1, Run: "r", Host: "h", Port: 1}}, CoordAddr{}, "is from another run"},
		{"nothing", nil, CoordAddr{}, "did not publish its coordinator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			go func() {
				for _, f := range tc.files {
					_ = WriteCoordAddr(dir, f)
					time.Sleep(30 * time.Millisecond)
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			got, err := WaitCoordAddr(ctx, dir, "9", "3", 1, 5*time.Millisecond)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			st, err := os.Stat(filepath.Join(dir, proto.CoordAddrFile))
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
			left, _ := filepath.Glob(filepath.Join(dir, ".coordinator.addr.*"))
			assert.Empty(t, left, "no temporary file left")
		})
	}
}

const multiHostScript = `#!/bin/bash
# Number of hosts in the computation = 2
worker_ckpts='
 :: n1 :bg: /c/.current/rank-0/ckpt_prog_a.dmtcp /c/.current/rank-1/ckpt_prog_b.dmtcp : ssh
 :: n2 :bg: /c/.current/rank-2/ckpt_prog_c.dmtcp /c/.current/rank-3/ckpt_prog_d.dmtcp /c/.current/rank-3/ckpt_sh_e.dmtcp : ssh
'

# Check for resource manager
`

func TestRestartScriptImages(t *testing.T) {
	assert.Equal(t, []scriptImage{{Path: "/c/a.dmtcp"}, {Path: "/c/b.dmtcp"}},
		restartScriptImages("x=1\ngiven_ckpt_files=\" /c/a.dmtcp /c/b.dmtcp\"\n"))
	got := restartScriptImages(multiHostScript)
	require.Len(t, got, 5)
	assert.Equal(t, scriptImage{Path: "/c/.current/rank-0/ckpt_prog_a.dmtcp", Host: "n1"}, got[0])
	assert.Equal(t, scriptImage{Path: "/c/.current/rank-3/ckpt_sh_e.dmtcp", Host: "n2"}, got[4])
	assert.Empty(t, restartScriptImages("#!/bin/sh\n"))
}

func TestRankImages(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"rank-0/ckpt_prog_a.dmtcp", "rank-1/ckpt_prog_b.dmtcp", "rank-2/ckpt_prog_c.dmtcp",
		"rank-3/ckpt_prog_d.dmtcp", "rank-3/ckpt_sh_e.dmtcp", "rank-3/ckpt_sh_e_files/x.sh", "rank-10/ckpt_prog_z.dmtcp",
		"rank-07/ckpt_odd.dmtcp", "rank-4/not-an-image"} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), nil, 0o600))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "dmtcp_restart_script_x.sh"), []byte(multiHostScript), 0o700))
	got, err := rankImages(dir)
	require.NoError(t, err)
	assert.Equal(t, []manifest.Rank{
		{Rank: 0, Node: "n1", Images: []string{"rank-0/ckpt_prog_a.dmtcp"}},
		{Rank: 1, Node: "n1", Images: []string{"rank-1/ckpt_prog_b.dmtcp"}},
		{Rank: 2, Node: "n2", Images: []string{"rank-2/ckpt_prog_c.dmtcp"}},
		{Rank: 3, Node: "n2", Images: []string{"rank-3/ckpt_prog_d.dmtcp", "rank-3/ckpt_sh_e.dmtcp"}},
		{Rank: 10, Node: "unknown", Images: []string{"rank-10/ckpt_prog_z.dmtcp"}},
	}, got)
	assert.Equal(t, 5, checkpointImages(dir, 2), "images of every host of the restart script")
}

func TestEveryRank(t *testing.T) {
	ranks := func(rs ...int) []manifest.Rank {
		var out []manifest.Rank
		for _, r := range rs {
			out = append(out, manifest.Rank{Rank: r, Node: "n1", Images: []string{manifest.RankDir(r) + "/ckpt_a.dmtcp"}})
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		ranks   []manifest.Rank
		tasks   int
		wantErr string
	}{
		{"every rank", ranks(0, 1, 2, 3), 4, ""},
		{"the ranks of a lost node", ranks(0, 1), 4, "the checkpoint has no image of rank 2, 3 of the step's 4 tasks"},
		{"one rank in the middle", ranks(0, 2), 3, "no image of rank 1 of the step's 3 tasks"},
		{"no image at all", nil, 2, "no image of rank 0, 1 of"},
		{"task count not known", ranks(0), 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := everyRank(tc.ranks, tc.tasks)
			if tc.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tc.wantErr)
		})
	}
}

// peersCoord answers Status with a number of processes that drops by one at each call.
type peersCoord struct {
	Coordinator
	left int
}

func (p *peersCoord) Status(context.Context) (coordinator.Status, error) {
	st := coordinator.Status{NumPeers: p.left, Running: true}
	if p.left > 0 {
		p.left--
	}
	return st, nil
}

func TestWaitOtherNodes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		left    int
		max     time.Duration
		atLeast time.Duration
		atMost  time.Duration
		left0   bool
	}{
		{"no process left: at once", 0, time.Second, 0, 40 * time.Millisecond, true},
		{"the other nodes' tasks end: until then", 3, 5 * time.Second, 100 * time.Millisecond, 2 * time.Second, true},
		{"they do not end in time: at most max", 1000, 200 * time.Millisecond, 200 * time.Millisecond, 2 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &peersCoord{left: tc.left}
			a := &Agent{Coord: c, Log: logrus.NewEntry(logrus.New())}
			start := time.Now()
			a.waitOtherNodes(context.Background(), tc.max)
			took := time.Since(start)
			assert.GreaterOrEqual(t, took, tc.atLeast)
			assert.LessOrEqual(t, took, tc.atMost)
			assert.Equal(t, tc.left0, c.left == 0)
		})
	}
}
