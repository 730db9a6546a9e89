//go:build integration

package integration

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOptionsListedInHelp(t *testing.T) {
	c := newCluster(t)
	for _, cmd := range []string{"sbatch", "srun", "salloc"} {
		r := c.run(t, testUser, "/tmp", nil, cmd, "--help")
		require.Equal(t, 0, r.code, "%s --help: %s", cmd, r.stderr)
		assert.Contains(t, r.stdout, "--dmtcp=[on|off]", cmd)
		assert.Contains(t, r.stdout, "--dmtcp-interval=DURATION", cmd)
	}
}

// Every bad value is refused before anything is submitted, with one line naming the option,
// the value and the accepted forms.
func TestBadValuesRefusedAtSubmit(t *testing.T) {
	c := newCluster(t)
	dir := workdir(t)
	before := c.run(t, "", "/", nil, "squeue", "-h", "-u", testUser, "-o", "%i").stdout
	cases := []struct {
		arg, forms string
	}{
		{"--dmtcp-interval=abc", "90s, 30m, 1h30m"},
		{"--dmtcp-interval=-5", "90s, 30m, 1h30m"},
		{"--dmtcp-interval=1e99", "90s, 30m, 1h30m"},
		{"--dmtcp-interval=10x", "90s, 30m, 1h30m"},
		{"--dmtcp-interval=", "empty value"},
		{"--dmtcp-interval=99999999999", "maximum of 31622400 seconds"},
		{"--dmtcp-interval=400d", "maximum of 31622400 seconds"},
		{"--dmtcp=maybe", "on or off"},
		{"--dmtcp-interval=30", "minimum of 60s"},
	}
	for _, tc := range cases {
		for _, cmd := range [][]string{{"sbatch", "--wrap", "true"}, {"srun", "true"}} {
			t.Run(cmd[0]+" "+tc.arg, func(t *testing.T) {
				args := append([]string{cmd[0], tc.arg}, cmd[1:]...)
				r := c.run(t, testUser, dir, nil, args...)
				assert.NotEqual(t, 0, r.code)
				assert.NotContains(t, r.stdout, "Submitted")
				name, value, _ := strings.Cut(strings.TrimPrefix(tc.arg, "--"), "=")
				line := firstLineWith(r.stderr, "dmtcp: ")
				assert.Contains(t, line, "--"+name, "stderr: %s", r.stderr)
				assert.Contains(t, line, value)
				assert.Contains(t, line, tc.forms)
			})
		}
	}
	// The environment-variable form of an option is checked the same way.
	r := c.run(t, testUser, dir, []string{"SLURM_SPANK__SLURM_SPANK_OPTION_dmtcp_dmtcp_interval=10x"}, "sbatch", "--wrap", "true")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "--dmtcp-interval=10x")
	// #SBATCH lines too.
	script := writeScript(t, dir, "bad.sh", "#!/bin/bash\n#SBATCH --dmtcp-interval=soon\ntrue\n")
	r = c.run(t, testUser, dir, nil, "sbatch", script)
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "--dmtcp-interval=soon")

	after := c.run(t, "", "/", nil, "squeue", "-h", "-u", testUser, "-o", "%i").stdout
	assert.Equal(t, before, after, "a refused submission queued a job")
}

func TestRootNeverRunsUnderDMTCP(t *testing.T) {
	c := newCluster(t)
	r := c.run(t, "", "/tmp", nil, "srun", "--dmtcp", "true")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "jobs of root are never run under DMTCP")
}

func TestPolicyOptOutForbidden(t *testing.T) {
	c := newCluster(t)
	c.withPolicy(t, "default=on allow_opt_out=no")
	r := c.run(t, testUser, "/tmp", nil, "sbatch", "--dmtcp=off", "--wrap", "true")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "--dmtcp=off")
	assert.Contains(t, r.stderr, "allow_opt_out=no")
}

func TestUnknownPlugstackKeyRejected(t *testing.T) {
	c := newCluster(t)
	c.withPolicy(t, "colour=blue")
	r := c.run(t, testUser, "/tmp", nil, "srun", "true")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "plugstack.conf argument 'colour' is unknown")
}

func firstLineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return fmt.Sprintf("(no line with %q)", sub)
}
