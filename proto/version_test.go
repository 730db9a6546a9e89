package proto

import (
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVersionLine(t *testing.T) {
	assert.Regexp(t, `^slurm-dmtcp-agent \d+\.\d+\.\d+ \(ready protocol sdmtcp/1\)$`, VersionLine("slurm-dmtcp-agent"))
}

func TestAskedVersion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"--version"}, true},
		{nil, false},
		{[]string{"--version", "x"}, false},
		{[]string{"-version"}, false},
		{[]string{"status"}, false},
	} {
		assert.Equal(t, tc.want, AskedVersion(tc.args), "%q", tc.args)
	}
}

// The C part's ready protocol is the Go one (spank/proto.h).
func TestCProtocolHeaderMatches(t *testing.T) {
	b, err := os.ReadFile("../spank/proto.h")
	require.NoError(t, err)
	m := regexp.MustCompile(`#define SDMTCP_PROTO_READY "([^"]+)"`).FindSubmatch(b)
	require.NotNil(t, m, "SDMTCP_PROTO_READY in spank/proto.h")
	assert.Equal(t, ReadyHeader, string(m[1]))
}
