package agent

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Every move of the table is allowed and nothing else; a refused move leaves the phase.
func TestLifecycleMoves(t *testing.T) {
	all := []Phase{Starting, Restoring, Running, Checkpointing, Stopping, EndedAtStop, StopSkipped, Finished, Killed}
	allowed := map[[2]Phase]bool{}
	for from, tos := range moves {
		for _, to := range tos {
			allowed[[2]Phase{from, to}] = true
		}
	}
	for _, from := range all {
		for _, to := range all {
			l := &Lifecycle{phase: from}
			err := l.To(to)
			if allowed[[2]Phase{from, to}] {
				assert.NoError(t, err, "%s -> %s", from, to)
				assert.Equal(t, to, l.Phase())
			} else {
				assert.Error(t, err, "%s -> %s", from, to)
				assert.Equal(t, from, l.Phase(), "a refused move leaves the phase")
			}
		}
	}
}

// The moves that matter for what a later run does.
func TestLifecycleDecidesFinished(t *testing.T) {
	for _, tc := range []struct {
		name string
		path []Phase
		ok   bool
	}{
		{"ran and ended by itself", []Phase{Running, Checkpointing, Running, Finished}, true},
		{"restored, ran, ended", []Phase{Restoring, Running, Finished}, true},
		{"restored and ended before it was seen running", []Phase{Restoring, Finished}, true},
		{"stopped by Slurm never finishes", []Phase{Running, Stopping, Finished}, false},
		{"a stop that found nothing may finish", []Phase{Running, Stopping, EndedAtStop, Finished}, true},
		{"only a stop finds nothing", []Phase{Running, EndedAtStop}, false},
		{"a stop that left the programs running may finish", []Phase{Running, Stopping, StopSkipped, Finished}, true},
		{"only a stop is skipped", []Phase{Running, StopSkipped}, false},
		{"a skipped stop found nothing too", []Phase{Running, Stopping, StopSkipped, EndedAtStop}, false},
		{"a checkpoint does not end as finished", []Phase{Running, Checkpointing, Finished}, false},
		{"killed is final", []Phase{Running, Killed, Running}, false},
		{"finished is final", []Phase{Running, Finished, Killed}, false},
		{"never ran", []Phase{Finished}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &Lifecycle{}
			var err error
			for _, p := range tc.path {
				if err = l.To(p); err != nil {
					break
				}
			}
			assert.Equal(t, tc.ok, err == nil, "%v", err)
		})
	}
	l := &Lifecycle{phase: Checkpointing}
	assert.False(t, l.From(Running, Restoring), "only from the phases named")
	assert.True(t, l.From(Running, Checkpointing))
	assert.Equal(t, "checkpointing", Checkpointing.String())
}
