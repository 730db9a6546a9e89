package agent

import (
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Lines for the job's error output that come before the task can be reached (a damaged
// generation found while the launcher starts) are written, in order, once it can be.
func TestProgressKeepsLinesUntilTheTaskIsThere(t *testing.T) {
	out := &lockedBuf{}
	reachable := false
	a := &Agent{Progress: func() io.WriteCloser {
		if !reachable {
			return nil
		}
		return out
	}}
	a.progress("generation %d is damaged", 4)
	a.flushProgress()
	assert.Empty(t, out.String())
	reachable = true
	a.progress("restoring generation %d", 3)
	assert.Equal(t, "slurm-dmtcp: generation 4 is damaged\nslurm-dmtcp: restoring generation 3\n", out.String())

	reachable = false
	a.progress("one more")
	reachable = true
	a.flushProgress()
	assert.Contains(t, out.String(), "slurm-dmtcp: one more\n")

	reachable = false
	for i := 0; i < maxUndelivered+5; i++ {
		a.progress("line %d", i)
	}
	assert.Len(t, a.undelivered, maxUndelivered, "bounded")
	assert.Equal(t, "slurm-dmtcp: line 5\n", a.undelivered[0], "the newest are kept")
}
