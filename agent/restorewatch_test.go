package agent

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/coordinator"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// restoringCoord is fakeCoord with the status a restore shows.
type restoringCoord struct {
	*fakeCoord
	status coordinator.Status
}

func (r *restoringCoord) Status(context.Context) (coordinator.Status, error) { return r.status, nil }

func TestRestoreImagesCountsRanks(t *testing.T) {
	gen := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(gen, "rank-1"), 0o700))
	for _, f := range []string{"ckpt_a.dmtcp", "rank-1/ckpt_b.dmtcp", "MANIFEST.json"} {
		require.NoError(t, os.WriteFile(filepath.Join(gen, f), make([]byte, 100), 0o600))
	}
	n, bytes := restoreImages(gen)
	assert.Equal(t, 2, n)
	assert.Equal(t, int64(200), bytes)
	assert.Equal(t, gen, restoring([]proto.KV{{Key: proto.KeyRestoreNote, Value: "x"}, {Key: proto.KeyRestore, Value: gen}}))
	assert.Empty(t, restoring(nil), "nothing to restore")
	assert.Equal(t, 2*time.Minute+10*time.Second, restoreWait(200<<20))
}

// A restore whose processes never all connect (DMTCP then waits for ever) ends the
// computation with a message (a step across nodes is not restored again); one that completes,
// or a step that ends first, is left alone.
func TestWatchRestore(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    coordinator.Status
		stepEnds  time.Duration // 0: never
		wantKills int
		wantMsg   string
	}{
		{"restore completes", coordinator.Status{NumPeers: 1, Running: true}, 0, 0, ""},
		{"restore hangs", coordinator.Status{NumPeers: 1, Running: false}, 0, 1,
			"restore did not complete within 0s: 1 of the 2 restored processes reached the coordinator; ending it"},
		{"step ends before the bound", coordinator.Status{NumPeers: 1, Running: false}, 100 * time.Millisecond, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, fake, progress := newTestAgent(t, Config{JobID: "7", Step: "0", Nodes: 2, Tasks: 1}, nil)
			coord := &restoringCoord{fakeCoord: fake, status: tc.status}
			a.Coord = coord
			gen := t.TempDir()
			for _, f := range []string{"ckpt_a.dmtcp", "ckpt_b.dmtcp"} {
				require.NoError(t, os.WriteFile(filepath.Join(gen, f), []byte("image"), 0o600))
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			wait := 400 * time.Millisecond
			if tc.stepEnds > 0 {
				wait = 10 * time.Second
				time.AfterFunc(tc.stepEnds, cancel)
			}
			done := make(chan struct{})
			go func() { a.watchRestore(ctx, gen, wait); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("watchRestore did not return")
			}
			fake.mu.Lock()
			assert.Equal(t, tc.wantKills, fake.kills)
			fake.mu.Unlock()
			if tc.wantMsg == "" {
				assert.Empty(t, progress.String())
			} else {
				assert.Contains(t, progress.String(), tc.wantMsg)
			}
		})
	}
}
