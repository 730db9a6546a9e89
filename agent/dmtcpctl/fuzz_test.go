package dmtcpctl

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzParse: what a user types after dmtcpctl (arguments split at spaces). The parser never
// panics; it refuses with a message, or names one of the commands with as many arguments
// as it takes.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"status", "checkpoint --no-wait", "wait 3 --timeout 10m", "interval 30m --json",
		"--job 7 generations", "--job 7 --socket /x status", "", "--timeout=-1 ping", "bogus", "wait"} {
		f.Add(s)
	}
	takes := map[string]int{"status": 0, "checkpoint": 0, "wait": 1, "interval": 1, "generations": 0, "ping": 0}
	f.Fuzz(func(t *testing.T, line string) {
		o, err := parse(strings.Fields(line))
		if err != nil {
			require.NotEmpty(t, err.Error())
			return
		}
		n, ok := takes[o.cmd]
		require.True(t, ok, "accepted command %q", o.cmd)
		require.Len(t, o.args, n)
	})
}
