package agent

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/coordinator"
)

// busyCoord is a coordinator whose checkpoint still runs (it outlived the agent's time-out).
type busyCoord struct{ *fakeCoord }

func (b busyCoord) Status(context.Context) (coordinator.Status, error) {
	return coordinator.Status{NumPeers: 1, Running: false}, nil
}

// What a checkpoint that still runs writes is not removed under DMTCP's feet; what one left
// that no longer runs is removed, before the next checkpoint at the latest, and never
// committed with it.
func TestCheckpointFolderClearedOnlyWhenNoCheckpointRuns(t *testing.T) {
	a, coord, _ := newTestAgent(t, Config{JobID: "7", Step: "batch"}, nil)
	temp := filepath.Join(a.Layout.CkptDir, "ckpt_python3_9.dmtcp.temp")
	require.NoError(t, os.WriteFile(temp, []byte("half"), 0o600))

	a.Coord = busyCoord{coord}
	a.clearCurrent()
	assert.FileExists(t, temp, "a checkpoint still runs: its image stays")

	a.Coord = coord
	stale := filepath.Join(a.Layout.CkptDir, "ckpt_gone_3.dmtcp")
	require.NoError(t, os.WriteFile(stale, []byte("of a process that has ended since"), 0o600))
	c, err := a.Checkpoint(context.Background(), "periodic")
	require.NoError(t, err)
	files, err := filepath.Glob(filepath.Join(c.Generation.Path, "ckpt_*"))
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Join(c.Generation.Path, "ckpt_bash_1.dmtcp")}, files, "only this checkpoint's image is committed")
	assert.NoFileExists(t, temp)
	assert.NoFileExists(t, stale)
}
