package agent

import (
	"fmt"
	"sync"
)

// Phase is where a step is in its life, as the agent sees it.
type Phase int

// The phases of a step. A step starts (Starting), restores a generation or not
// (Restoring), runs (Running), is checkpointed (Checkpointing) and ends in one of three
// ways: it ended by itself (Finished), Slurm stopped it (Stopping: its last checkpoint is
// the one to restore), or it ended any other way (Killed: a task killed, a restore that gave
// up; its newest generation is the one to restore). A stop whose checkpoint finds no process
// left (EndedAtStop), or that took no checkpoint and left the programs running (StopSkipped:
// the checkpoint folder unusable or full), finishes only when every task ended by itself.
const (
	Starting Phase = iota
	Restoring
	Running
	Checkpointing
	Stopping
	EndedAtStop
	StopSkipped
	Finished
	Killed
)

var phaseNames = [...]string{"starting", "restoring", "running", "checkpointing", "stopping", "ended-at-stop", "stop-skipped", "finished", "killed"}

func (p Phase) String() string {
	if p < 0 || int(p) >= len(phaseNames) {
		return fmt.Sprintf("phase(%d)", int(p))
	}
	return phaseNames[p]
}

// moves lists, for each phase, the phases it may go to. Finished and Killed are final;
// Stopping goes nowhere but Killed (the computation ended after Slurm's stop, or before it
// could be checkpointed) and EndedAtStop (its checkpoint found no process: the programs had
// ended as Slurm stopped the step) and StopSkipped (no checkpoint was taken and the programs
// were left running: one that ends before Slurm kills it ends by itself), which finish when
// every task ended by itself. Else
// only a step that runs or restores can finish. A restored program that dies soon after its
// restore takes the step back from Running to Restoring.
var moves = map[Phase][]Phase{
	Starting:      {Restoring, Running, Stopping, Killed},
	Restoring:     {Restoring, Running, Stopping, Finished, Killed},
	Running:       {Checkpointing, Restoring, Stopping, Finished, Killed}, // Restoring: a restored program died soon after
	Checkpointing: {Running, Stopping, Killed},
	Stopping:      {EndedAtStop, StopSkipped, Killed},
	EndedAtStop:   {Finished, Killed},
	StopSkipped:   {Finished, Killed},
}

// Lifecycle is a step's phase; its moves are the only place where a step becomes finished
// (and is then started from the top by a later run) or not. Safe for concurrent use.
type Lifecycle struct {
	mu    sync.Mutex
	phase Phase
}

// Phase is the current phase.
func (l *Lifecycle) Phase() Phase {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.phase
}

// To moves to next, or says why it may not: the phase stays as it was.
func (l *Lifecycle) To(next Phase) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range moves[l.phase] {
		if p == next {
			l.phase = next
			return nil
		}
	}
	return fmt.Errorf("step lifecycle: %s cannot go to %s", l.phase, next)
}

// May reports whether To(next) would move now.
func (l *Lifecycle) May(next Phase) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range moves[l.phase] {
		if p == next {
			return true
		}
	}
	return false
}

// From moves to next only from one of the phases from; it reports whether it moved.
func (l *Lifecycle) From(next Phase, from ...Phase) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range from {
		if l.phase == f {
			for _, p := range moves[l.phase] {
				if p == next {
					l.phase = next
					return true
				}
			}
		}
	}
	return false
}

// Stopped reports whether Slurm is stopping the step (Stopping, EndedAtStop, StopSkipped).
func (l *Lifecycle) Stopped() bool {
	p := l.Phase()
	return p == Stopping || p == EndedAtStop || p == StopSkipped
}

// OwnEndsCount reports whether Slurm's stop left the programs to end by themselves: its
// checkpoint found none left (EndedAtStop) or was skipped without touching them
// (StopSkipped).
func (l *Lifecycle) OwnEndsCount() bool {
	p := l.Phase()
	return p == EndedAtStop || p == StopSkipped
}
