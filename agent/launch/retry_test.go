package launch

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// A restoring task waits for the agent's word on the generation: it takes the reply of
// attempt 1, and ends when the agent is gone or Slurm stops the step meanwhile.
func TestAwaitVerified(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, run string)
		want    proto.RestoreReply
		wantErr string
	}{
		{"the agent names a generation", func(t *testing.T, run string) {
			writeLater(t, filepath.Join(run, "restore-reply"), proto.RestoreReply{Attempt: 1, Restore: "/g/gen-000004"}.Marshal())
		}, proto.RestoreReply{Attempt: 1, Restore: "/g/gen-000004"}, ""},
		{"the agent says start from the top", func(t *testing.T, run string) {
			writeLater(t, filepath.Join(run, "restore-reply"), proto.RestoreReply{Attempt: 1, Fresh: true}.Marshal())
		}, proto.RestoreReply{Attempt: 1, Fresh: true}, ""},
		{"Slurm stops the step", func(t *testing.T, run string) {
			writeLater(t, filepath.Join(run, "stopping"), nil)
		}, proto.RestoreReply{}, "Slurm stopped the step"},
		{"the agent ends", func(t *testing.T, run string) {
			time.AfterFunc(30*time.Millisecond, func() { os.RemoveAll(run) })
		}, proto.RestoreReply{}, "the agent ended"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := filepath.Join(t.TempDir(), "run")
			require.NoError(t, os.Mkdir(run, 0o700))
			tc.setup(t, run)
			got, err := AwaitVerified([]string{"SLURM_DMTCP_RUNDIR=" + run}, time.Millisecond)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	assert.True(t, VerifiedLater([]string{"SLURM_DMTCP_RESTORE=/g", "SLURM_DMTCP_RESTORE_VERIFY=1"}))
	assert.False(t, VerifiedLater([]string{"SLURM_DMTCP_RESTORE_VERIFY=1"}), "nothing to restore")
	assert.Equal(t, []string{"A=1"}, WithRestore([]string{"SLURM_DMTCP_RESTORE=/g", "A=1"}, ""))
	assert.Equal(t, []string{"A=1", "SLURM_DMTCP_RESTORE=/h"}, WithRestore([]string{"SLURM_DMTCP_RESTORE=/g", "A=1"}, "/h"))
}

// writeLater writes p a little later, whole (temporary file, rename), as the agent does.
func writeLater(t *testing.T, p string, data []byte) {
	time.AfterFunc(30*time.Millisecond, func() {
		_ = os.WriteFile(p+".tmp", data, 0o600)
		_ = os.Rename(p+".tmp", p)
	})
}
