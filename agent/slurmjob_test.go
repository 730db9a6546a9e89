package agent

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRestarts(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     int
		err      string
	}{
		{"first run", "JobId=7 JobName=x Requeue=1 Restarts=0 BatchFlag=1", 0, ""},
		{"requeued twice", "JobId=7 Restarts=2 BatchFlag=1", 2, ""},
		{"missing", "slurm_load_jobs error: Invalid job id specified", 0, "no Restarts= field"},
		{"garbage", "JobId=7 Restarts=many", 0, `Restarts="many"`},
		{"negative", "Restarts=-1", 0, "not a count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := parseRestarts(tc.in)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, n)
		})
	}
}
