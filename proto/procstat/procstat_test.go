package procstat

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tail20: the fields after ppid (pgrp to cstime, priority, nice, threads, itrealvalue), then
// starttime, vsize, rss.
const tail20 = " 0 0 0 0 0 0 0 0 0 0 0 0 0 20 0 1 0 4242 10000 10"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       Stat
		err        string
	}{
		{"plain", "12 (bash) S 7" + tail20, Stat{State: 'S', PPid: 7, Threads: 1, StartTicks: 4242}, ""},
		{"command with spaces and parentheses", "12 (a (b) c) R 1" + tail20, Stat{State: 'R', PPid: 1, Threads: 1, StartTicks: 4242}, ""},
		{"zombie", "12 (x) Z 3" + tail20, Stat{State: 'Z', PPid: 3, Threads: 1, StartTicks: 4242}, ""},
		{"no command", "12 x S 7" + tail20, Stat{}, "no ')'"},
		{"cut short", "12 (x) S 7 0 0", Stat{}, "4 fields after the command name"},
		{"ppid not a number", "12 (x) S q" + tail20, Stat{}, `ppid "q"`},
		{"threads not a number", "12 (x) S 7 0 0 0 0 0 0 0 0 0 0 0 0 0 20 0 many 0 4242 10000 10", Stat{}, `num_threads "many"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.line))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestReadSelf(t *testing.T) {
	st, err := Read("/proc", os.Getpid())
	require.NoError(t, err)
	assert.Equal(t, os.Getppid(), st.PPid)
	assert.False(t, st.Gone())
	assert.NotZero(t, st.StartTicks)
	assert.GreaterOrEqual(t, st.Threads, 1)
}
