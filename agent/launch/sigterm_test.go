package launch

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The plugin is loaded by dmtcp_launch only (restored processes have it in their images),
// with the task's own DMTCP_PLUGIN list after it, and the program's first process is told
// the default disposition; a SLURM_DMTCP_SIGTERM from the task's environment never passes.
func TestCommandLoadsSigtermPlugin(t *testing.T) {
	prefix := fakePrefix(t)
	gen := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(gen, "ckpt_a_1.dmtcp"), nil, 0o600))
	base := []string{"SLURM_DMTCP_ARGV0=./prog", "SLURM_DMTCP_COORD_HOST=n1", "SLURM_DMTCP_COORD_PORT=4242",
		"SLURM_DMTCP_DMTCP_PREFIX=" + prefix, "SLURM_DMTCP_SIGTERM=ignore:blocked"}
	launch, restart := prefix+"/bin/dmtcp_launch", prefix+"/bin/dmtcp_restart"
	for _, tc := range []struct {
		name     string
		env      []string
		plugin   string
		wantArgv []string
		wantEnv  []string
		noEnv    []string
	}{
		{name: "launch", env: base, plugin: "/l/slurm-dmtcp-sigterm.so",
			wantArgv: []string{launch, "-j", "-h", "n1", "-p", "4242", "--with-plugin", "/l/slurm-dmtcp-sigterm.so", "./prog", "x"},
			wantEnv:  []string{"SLURM_DMTCP_SIGTERM=default"}, noEnv: []string{"SLURM_DMTCP_SIGTERM=ignore:blocked"}},
		{name: "the task's own DMTCP plugins follow", env: append(base, "DMTCP_PLUGIN=/u/mine.so"), plugin: "/l/slurm-dmtcp-sigterm.so",
			wantArgv: []string{launch, "-j", "-h", "n1", "-p", "4242", "--with-plugin", "/l/slurm-dmtcp-sigterm.so:/u/mine.so", "./prog", "x"},
			wantEnv:  []string{"SLURM_DMTCP_SIGTERM=default"}, noEnv: []string{"DMTCP_PLUGIN=/u/mine.so"}},
		{name: "no plugin installed", env: base,
			wantArgv: []string{launch, "-j", "-h", "n1", "-p", "4242", "./prog", "x"},
			noEnv:    []string{"SLURM_DMTCP_SIGTERM=default", "SLURM_DMTCP_SIGTERM=ignore:blocked"}},
		{name: "restore", env: append(base, "SLURM_DMTCP_RESTORE="+gen), plugin: "/l/slurm-dmtcp-sigterm.so",
			wantArgv: []string{restart, "-j", "-h", "n1", "-p", "4242", filepath.Join(gen, "ckpt_a_1.dmtcp")},
			noEnv:    []string{"SLURM_DMTCP_SIGTERM=default", "SLURM_DMTCP_SIGTERM=ignore:blocked"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, argv, env, err := Command([]string{"x"}, tc.env, tc.plugin)
			require.NoError(t, err)
			assert.Equal(t, tc.wantArgv, argv)
			for _, kv := range tc.wantEnv {
				assert.Contains(t, env, kv)
			}
			for _, kv := range tc.noEnv {
				assert.NotContains(t, env, kv)
			}
		})
	}
}

func TestPluginBeside(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "slurm-dmtcp-exec")
	_, err := PluginBeside(exe)
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(dir, SigtermPlugin)+" is missing")

	require.NoError(t, os.Mkdir(filepath.Join(dir, SigtermPlugin), 0o755))
	_, err = PluginBeside(exe)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is not a regular file")

	require.NoError(t, os.Remove(filepath.Join(dir, SigtermPlugin)))
	require.NoError(t, os.WriteFile(filepath.Join(dir, SigtermPlugin), nil, 0o755))
	p, err := PluginBeside(exe)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, SigtermPlugin), p)
}
