package proto

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRestoreReplyRoundTrip(t *testing.T) {
	for _, r := range []RestoreReply{
		{Attempt: 2, Restore: "/h/.slurm-dmtcp/7/batch/gen-000004"},
		{Attempt: 4, GiveUp: "the restore failed 4 times\n(generations 4, 3)"},
		{Attempt: 1, Over: true},
		{Attempt: 1, Fresh: true},
	} {
		got, err := ParseRestoreReply(r.Marshal())
		require.NoError(t, err)
		if r.GiveUp != "" {
			r.GiveUp = "the restore failed 4 times (generations 4, 3)" // one line
		}
		assert.Equal(t, r, got)
	}
}

func TestRestoreReplyRefusesTheMalformed(t *testing.T) {
	for _, b := range []string{"", "attempt=2\n", "restore=/g\n", "attempt=0\nrestore=/g\n", "attempt=x\nover=1\n",
		"attempt=2\nrestore=/g\nover=1\n", "attempt=2\nwhat=1\n", "attempt=2\nnoequals\n", "attempt=2\nover=0\n", "attempt=1\nfresh=0\n"} {
		_, err := ParseRestoreReply([]byte(b))
		assert.Error(t, err, "%q", b)
	}
}

func TestRestoreFailure(t *testing.T) {
	f := RestoreFailure{Attempt: 2, Code: 139}
	got, err := ParseRestoreFailure(f.Marshal())
	require.NoError(t, err)
	assert.Equal(t, f, got)
	for _, b := range []string{"", "attempt=2\n", "attempt=0\ncode=1\n", "attempt=2\ncode=x\n", "attempt=2\ncode=139\nmore\n"} {
		_, err := ParseRestoreFailure([]byte(b))
		assert.Error(t, err, "%q", b)
	}
}
