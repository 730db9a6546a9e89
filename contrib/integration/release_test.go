//go:build integration

package integration

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests whose expectations depend on the Slurm release read it from scontrol --version.
func TestParseSlurmRelease(t *testing.T) {
	for _, tc := range []struct {
		out          string
		major, minor int
		bad          bool
	}{
		{out: "slurm 24.11.5\n", major: 24, minor: 11},
		{out: "slurm-wlm 22.05.8\n", major: 22, minor: 5},
		{out: "slurm 25.05.0-0rc1", major: 25, minor: 5},
		{out: "", bad: true},
		{out: "scontrol: error: no conf", bad: true},
		{out: "slurm 24", bad: true},
	} {
		t.Run(tc.out, func(t *testing.T) {
			major, minor, err := parseSlurmRelease(tc.out)
			if tc.bad {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, []int{tc.major, tc.minor}, []int{major, minor})
		})
	}
}
