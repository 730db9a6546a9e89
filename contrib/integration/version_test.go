//go:build integration

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// Each step under DMTCP names the release that ran it in slurmd's log; a step without
// --dmtcp leaves no line there. Every binary prints the same release for --version.
func TestVersionInSlurmdLogAndBinaries(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	dir := workdir(t)
	logs, _ := filepath.Glob(filepath.Join(c.dir, "log", "slurmd*.log"))
	require.NotEmpty(t, logs, "slurmd's log in %s/log", c.dir)

	step := func(args ...string) string {
		argv := append([]string{"srun"}, args...)
		argv = append(argv, "bash", "-c", `echo "$SLURM_JOB_ID.$SLURM_STEP_ID"`)
		r := c.run(t, testUser, dir, nil, argv...)
		require.Equal(t, 0, r.code, r.stderr)
		return strings.TrimSpace(r.stdout)
	}
	with, without := step("--dmtcp"), step()
	var all string
	for _, l := range logs {
		b, err := os.ReadFile(l)
		require.NoError(t, err)
		all += string(b)
	}
	want := "[" + with + "] dmtcp: slurm-dmtcp " + proto.Version + " runs this step"
	assert.True(t, strings.Contains(all, want), "no line %q in %v", want, logs)
	assert.False(t, strings.Contains(all, "["+without+"] dmtcp:"), "step %s without --dmtcp logged a dmtcp: line", without)

	for _, bin := range []string{"slurm-dmtcp-agent", "slurm-dmtcp-exec", "dmtcpctl"} {
		r := c.run(t, "", dir, nil, filepath.Join(c.dir, "bin", bin), "--version")
		require.Equal(t, 0, r.code, "%s --version: %s", bin, r.stderr)
		assert.Equal(t, proto.VersionLine(bin)+"\n", r.stdout)
	}
}
