package control

import (
	"sync"

	proto "github.com/slurm-dmtcp/slurm-dmtcp/proto/control"
)

// Ticket is one requested checkpoint: queued, then running, then done or failed. Several
// requests that arrive before it starts share it.
type Ticket struct {
	id   uint64
	done chan struct{}
	once sync.Once
	mu   sync.Mutex
	res  proto.CheckpointResult
}

// NewTicket returns a queued ticket.
func NewTicket(id uint64) *Ticket {
	return &Ticket{id: id, done: make(chan struct{}), res: proto.CheckpointResult{Ticket: id, State: proto.TicketQueued}}
}

// ID is the ticket's number.
func (t *Ticket) ID() uint64 { return t.id }

// Done is closed when the ticket is done or failed.
func (t *Ticket) Done() <-chan struct{} { return t.done }

// SetRunning marks the checkpoint as started.
func (t *Ticket) SetRunning() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.res.State == proto.TicketQueued {
		t.res.State = proto.TicketRunning
	}
}

// Finish records the outcome (State done or failed) once; later calls are ignored.
func (t *Ticket) Finish(r proto.CheckpointResult) {
	t.once.Do(func() {
		t.mu.Lock()
		r.Ticket = t.id
		t.res = r
		t.mu.Unlock()
		close(t.done)
	})
}

// Result is the ticket's current state.
func (t *Ticket) Result() proto.CheckpointResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.res
}
