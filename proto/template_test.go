package proto

import (
	"os/user"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestExpandCheckpointDir(t *testing.T) {
	u := &user.User{Username: "alice", Uid: "1001", HomeDir: "/home/alice"}
	for _, tc := range []struct {
		tmpl, want, err string
	}{
		{"%h/.slurm-dmtcp/%j", "/home/alice/.slurm-dmtcp/42", ""},
		{"/scratch/%u/%U/%j/", "/scratch/alice/1001/42", ""},
		{"/x/100%%/%j", "/x/100%/42", ""},
		{"/x/%j%", "", "lone %"},
		{"/x/%q", "", "unknown %q"},
		{"rel/%j", "", "not an absolute path"},
	} {
		got, err := ExpandCheckpointDir(tc.tmpl, u, "42")
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.tmpl)
			continue
		}
		assert.NoError(t, err, tc.tmpl)
		assert.Equal(t, tc.want, got)
	}
}
