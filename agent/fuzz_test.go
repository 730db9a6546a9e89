package agent

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzParseCoordAddr: coordinator.addr sits in the user's shared checkpoint folder, where
// anything may be written. The parser never panics, and what it accepts survives a round
// trip through Marshal.
func FuzzParseCoordAddr(f *testing.F) {
	good := CoordAddr{JobID: "7", Step: "1", RestartCount: 2, Run: "r1", Host: "n1", Port: 4000}
	for _, s := range []string{string(good.Marshal()), "", "=", "job=7\nport=x\n", "port=-1\n", "job=\x00\n", "error=boom\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCoordAddr(data)
		if err != nil {
			require.NotEmpty(t, err.Error())
			return
		}
		again, err := ParseCoordAddr(c.Marshal())
		require.NoError(t, err, "what was accepted, marshalled again: %q", c.Marshal())
		require.Equal(t, c, again)
	})
}
