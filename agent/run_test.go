package agent

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/generations"
	"github.com/slurm-dmtcp/slurm-dmtcp/coordinator"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/facts"
)

func TestDMTCPVersion(t *testing.T) {
	dir := t.TempDir()
	launch := filepath.Join(dir, "dmtcp_launch")
	assert.NoError(t, os.WriteFile(launch, []byte("#!/bin/sh\necho 'dmtcp_launch (DMTCP) 9.9'\n"), 0o755))
	inst := coordinator.Install{Launch: launch}
	for _, tc := range []struct {
		name string
		node NodeFacts
		want string
	}{
		{"the facts name this dmtcp_launch: no process", NodeFacts{Facts: facts.Facts{DMTCPVersion: "5.0", DMTCPLaunch: launch}}, "5.0"},
		{"the facts name another dmtcp_launch", NodeFacts{Facts: facts.Facts{DMTCPVersion: "5.0", DMTCPLaunch: "/usr/bin/dmtcp_launch"}}, "9.9"},
		{"the facts have no version", NodeFacts{Facts: facts.Facts{DMTCPLaunch: launch}}, "9.9"},
		{"no facts", NodeFacts{Err: errors.New("no cache")}, "9.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := dmtcpVersion(tc.node, inst)
			assert.NoError(t, err)
			assert.Equal(t, tc.want, v)
		})
	}
}

// Layout.Earlier tells a step's first run (its folder made now) from a later one; only the
// later ones ask Slurm for a batch step's restart count.
func TestLayoutEarlierRunOfTheStep(t *testing.T) {
	u, err := user.Current()
	require.NoError(t, err)
	base := t.TempDir()
	for _, tc := range []struct {
		name    string
		cfg     Config
		earlier []bool // one run after the other
	}{
		{"batch step", Config{JobID: "42", Step: "batch"}, []bool{false, true, true}},
		{"srun step", Config{JobID: "43", Step: "0"}, []bool{false, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.CkptTemplate = filepath.Join(base, "ckpt", "%j")
			cfg.RuntimeDir = filepath.Join(base, "run")
			require.NoError(t, os.MkdirAll(cfg.RuntimeDir, 0o700))
			for i, want := range tc.earlier {
				l, err := NewLayout(cfg, u)
				require.NoError(t, err)
				assert.Equal(t, want, l.Earlier, "run %d", i)
				require.NoError(t, removeRunDir(l.RunDir)) // as at the end of each run
			}
		})
	}
}

// What DMTCP writes in .current is cleared only by the agent that holds the step's lock: an
// agent of an earlier run that still lives (its DMTCP maybe still writing) keeps it.
func TestOpenStoreClearsCurrentOnlyUnderTheLock(t *testing.T) {
	u, err := user.Current()
	require.NoError(t, err)
	base := t.TempDir()
	cfg := Config{JobID: "44", Step: "batch", CkptTemplate: filepath.Join(base, "ckpt", "%j"), RuntimeDir: filepath.Join(base, "run")}
	require.NoError(t, os.Mkdir(cfg.RuntimeDir, 0o700))
	l, err := NewLayout(cfg, u)
	require.NoError(t, err)
	image := filepath.Join(l.CkptDir, "ckpt_a_1.dmtcp.temp")
	require.NoError(t, os.WriteFile(image, []byte("being written"), 0o600))

	first, err := openStore(l, 2) // the earlier run's agent, still alive
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(image, []byte("being written"), 0o600))
	l2, err := NewLayout(cfg, u)
	require.NoError(t, err)
	assert.FileExists(t, image, "a new layout leaves the images alone")
	_, err = openStore(l2, 2)
	require.ErrorIs(t, err, generations.ErrLocked)
	assert.FileExists(t, image, "an agent without the lock leaves the images alone")

	require.NoError(t, first.Close())
	second, err := openStore(l2, 2)
	require.NoError(t, err)
	defer second.Close()
	assert.NoFileExists(t, image, "the agent with the lock clears what the earlier run left")
}

// The coordinator guard must be beside the agent; without it the step does not run, with
// ExitGuard and a message naming the file.
func TestGuardBeside(t *testing.T) {
	dir := t.TempDir()
	withGuard := filepath.Join(dir, "ok")
	asFolder := filepath.Join(dir, "folder")
	for _, d := range []string{withGuard, asFolder, filepath.Join(asFolder, guardName)} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(withGuard, guardName), []byte("ELF"), 0o755))
	for _, tc := range []struct {
		name, dir, want string
	}{
		{"installed", withGuard, ""},
		{"missing", filepath.Join(dir, "none"), "no such file or directory"},
		{"not a file", asFolder, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := guardBeside(tc.dir)
			if tc.want == "" {
				require.NoError(t, err)
				assert.Equal(t, filepath.Join(tc.dir, guardName), p)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), filepath.Join(tc.dir, guardName))
			assert.Contains(t, err.Error(), "not installed beside the agent")
			assert.Equal(t, ExitGuard, coordinatorExit(err))
		})
	}
}

// A coordinator that never ran because of its guard ends the agent with ExitGuard; any other
// reason with ExitCoordinator.
func TestCoordinatorExit(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"guard", &coordinator.GuardError{Guard: "/g.so", Why: "not active"}, ExitGuard},
		{"guard, wrapped", fmt.Errorf("start: %w", &coordinator.GuardError{Guard: "/g.so"}), ExitGuard},
		{"other", errors.New("dmtcp_coordinator exited at start"), ExitCoordinator},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, coordinatorExit(tc.err))
		})
	}
}
