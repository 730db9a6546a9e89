package agent

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	ctlsrv "github.com/slurm-dmtcp/slurm-dmtcp/agent/control"
	"github.com/slurm-dmtcp/slurm-dmtcp/agent/generations"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
	ctl "github.com/slurm-dmtcp/slurm-dmtcp/proto/control"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto/manifest"
)

// keepTickets bounds how many finished checkpoint tickets the agent remembers.
const keepTickets = 64

// control is the agent's side of its control socket (agent/control, proto/control): the
// state status requests read while Serve runs, and the checkpoint requests Serve takes one at
// a time, between its own periodic, lead-time and SIGTERM checkpoints.
type control struct {
	a    *Agent
	host string // the coordinator's address, for status
	port int
	srv  *ctlsrv.Server
	path string
	done chan error
	kick chan struct{} // wakes Serve: a checkpoint was requested, or the interval changed

	mu         sync.Mutex
	periodic   *periodic
	inProgress *ctl.InProgress
	last       *ctl.LastCheckpoint
	pending    *ctlsrv.Ticket
	tickets    map[uint64]*ctlsrv.Ticket
	order      []uint64
	nextID     uint64
	starting   uint64 // the ticket of the requested checkpoint about to start, for status
	stopping   bool   // SIGTERM: Slurm is ending the step; no more checkpoints on request
	closed     bool   // the socket is closed (end of the step)
}

// startControl opens the control socket in the runtime folder and serves it. It returns the
// ready-message pair that tells the tasks where it is, or nothing when the socket cannot be
// made (the step runs on without it; the reason is in agent.log).
func (a *Agent) startControl(p *periodic, host string, port int) []proto.KV {
	path := filepath.Join(a.Layout.RunDir, ctl.SocketName)
	ln, err := ctlsrv.Listen(path)
	if err != nil {
		a.Log.WithError(err).Warn("no control socket: dmtcpctl and the Python client will not reach this step")
		return nil
	}
	c := &control{a: a, host: host, port: port, path: path, done: make(chan error, 1), kick: make(chan struct{}, 1),
		periodic: p, tickets: map[uint64]*ctlsrv.Ticket{}}
	check := a.controlGuard
	if check == nil {
		check = ctlsrv.Guard{UID: os.Getuid(), JobID: a.Config.JobID, StepPID: os.Getppid(), Proc: ctlsrv.SysProc{}}.Check
	}
	c.srv = &ctlsrv.Server{Backend: backend{c}, Log: a.Log.WithField("component", "control"),
		Check: check, Limits: ctlsrv.Defaults()}
	a.control = c
	go func() { c.done <- c.srv.Serve(ln) }()
	a.Log.WithField("socket", path).Info("control socket ready")
	return []proto.KV{{Key: proto.KeyControlSocket, Value: path}}
}

// stopControl closes the socket; queued checkpoint requests fail with "stopping".
func (a *Agent) stopControl() {
	c := a.control
	if c == nil {
		return
	}
	c.mu.Lock()
	c.closed = true
	if c.pending != nil {
		c.pending.Finish(ctl.CheckpointResult{State: ctl.TicketFailed, Error: "the step is stopping"})
		c.pending = nil
	}
	c.mu.Unlock()
	c.srv.Close()
	<-c.done
}

// controlKick is the channel Serve selects on for control requests (nil without a socket).
func (a *Agent) controlKick() <-chan struct{} {
	if a.control == nil {
		return nil
	}
	return a.control.kick
}

// serveControl runs in Serve's loop: it takes the queued checkpoint request, if any, or
// fails it when the step is stopping. A requested checkpoint restarts the periodic timer.
func (a *Agent) serveControl(ctx context.Context, stopping bool) {
	c := a.control
	c.mu.Lock()
	t := c.pending
	c.pending = nil
	c.mu.Unlock()
	if t == nil {
		return // an interval change: Serve picks up the new timer
	}
	if stopping {
		c.mu.Lock()
		c.stopping = true
		c.mu.Unlock()
		t.Finish(ctl.CheckpointResult{State: ctl.TicketFailed, Error: "the step is stopping: no more checkpoints on request"})
		return
	}
	t.SetRunning()
	a.Log.WithField("ticket", t.ID()).Info("checkpoint requested through the control socket")
	c.mu.Lock()
	c.starting = t.ID()
	c.mu.Unlock()
	start := time.Now()
	com, err := a.Checkpoint(ctx, manifest.ReasonRequest)
	r := ctl.CheckpointResult{State: ctl.TicketDone, Generation: com.Generation.Number, Bytes: com.Bytes,
		Path: com.Generation.Path, DurationS: time.Since(start).Seconds()}
	if err != nil {
		r = ctl.CheckpointResult{State: ctl.TicketFailed, Error: err.Error()}
	}
	t.Finish(r)
	c.periodic.Restart() // the interval counts from the end of the previous checkpoint
}

// trackCheckpoint records a checkpoint's start for status; the returned func records its end.
func (a *Agent) trackCheckpoint(reason manifest.Reason) func(generations.Committed, error) {
	c := a.control
	if c == nil {
		return func(generations.Committed, error) {}
	}
	start := time.Now()
	c.mu.Lock()
	if reason == manifest.ReasonSignal {
		c.stopping = true // the computation ends after this checkpoint
	}
	ticket := c.starting
	c.starting = 0
	c.inProgress = &ctl.InProgress{Started: start, Reason: string(reason), Ticket: ticket}
	c.mu.Unlock()
	return func(com generations.Committed, err error) {
		l := &ctl.LastCheckpoint{Time: time.Now(), Reason: string(reason), OK: err == nil,
			DurationS: time.Since(start).Seconds()}
		if err != nil {
			l.Error = err.Error()
		} else {
			l.Generation, l.Bytes = com.Generation.Number, com.Bytes
		}
		c.mu.Lock()
		c.inProgress, c.last = nil, l
		c.mu.Unlock()
	}
}

// backend is what the control socket sees of the agent.
type backend struct{ c *control }

func (b backend) Hello() ctl.Hello {
	a := b.c.a
	h := ctl.Hello{Protocol: ctl.Version, JobID: a.Config.JobID, Step: a.Config.Step,
		RestartCount: a.Config.RestartCount, AgentPID: os.Getpid(), Started: a.Started}
	h.RestoredGeneration = a.restoredGeneration()
	return h
}

func (b backend) Status(ctx context.Context) (ctl.Status, error) {
	a := b.c.a
	st := ctl.Status{Hello: b.Hello(), State: ctl.StateRunning, MinIntervalS: int64(a.Config.MinInterval / time.Second),
		StepDir: a.Layout.StepDir}
	st.Coordinator.Host, st.Coordinator.Port = b.c.host, b.c.port
	cs, err := a.Coord.Status(ctx)
	if err != nil {
		st.Processes, st.CoordinatorError = -1, err.Error()
	} else {
		st.Processes = cs.NumPeers
	}
	iv, next := b.c.periodic.Get()
	st.IntervalS = int64(iv / time.Second)
	if !next.IsZero() {
		st.NextCheckpoint = &next
	}
	b.c.mu.Lock()
	if b.c.inProgress != nil {
		p := *b.c.inProgress
		st.InProgress, st.State = &p, ctl.StateCheckpointing
	}
	if b.c.last != nil {
		l := *b.c.last
		st.LastCheckpoint = &l
	}
	if b.c.closed || b.c.stopping {
		st.State = ctl.StateStopping
	}
	b.c.mu.Unlock()
	g, err := b.Generations()
	if err != nil {
		return st, err
	}
	st.Generations = g
	return st, nil
}

func (b backend) Generations() (ctl.Generations, error) {
	s := b.c.a.Store
	gens, err := s.List()
	if err != nil {
		return ctl.Generations{}, err
	}
	out := ctl.Generations{Keep: s.Keep(), Generations: []ctl.Generation{}}
	for _, g := range gens {
		cg := ctl.Generation{Number: g.Number, Time: g.Time, Bytes: g.Size, Reason: string(g.Reason), Path: g.Path}
		if g.ManifestErr != nil {
			cg.Error = g.ManifestErr.Error()
		}
		out.Generations = append(out.Generations, cg)
	}
	return out, nil
}

func (b backend) SetInterval(d time.Duration) (ctl.IntervalResult, error) {
	a := b.c.a
	minIv := a.Config.MinInterval
	switch {
	case d%time.Second != 0:
		return ctl.IntervalResult{}, ctl.Errorf(ctl.CodeBadRequest, "interval %s: want whole seconds (%s)", d, ctl.DurationForms)
	case d > 0 && d < minIv:
		return ctl.IntervalResult{}, ctl.Errorf(ctl.CodePolicy, "interval %ds is shorter than the site's min_interval %ds (plugstack.conf); use 0 for no periodic checkpoints, or at least %ds",
			int64(d/time.Second), int64(minIv/time.Second), int64(minIv/time.Second))
	case d > ctl.MaxInterval:
		return ctl.IntervalResult{}, ctl.Errorf(ctl.CodePolicy, "interval %ds is longer than the longest accepted, 366d", int64(d/time.Second))
	}
	b.c.mu.Lock()
	closed := b.c.closed || b.c.stopping
	b.c.mu.Unlock()
	if closed {
		return ctl.IntervalResult{}, ctl.Errorf(ctl.CodeStopping, "the step is stopping")
	}
	old, _ := b.c.periodic.Get()
	next := b.c.periodic.Reset(d)
	b.poke()
	a.Log.WithFields(logrus.Fields{"old": old.String(), "interval": d.String()}).Info("checkpoint interval changed through the control socket")
	r := ctl.IntervalResult{OldS: int64(old / time.Second), IntervalS: int64(d / time.Second)}
	if !next.IsZero() {
		r.NextCheckpoint = &next
	}
	return r, nil
}

func (b backend) RequestCheckpoint() (*ctlsrv.Ticket, error) {
	c := b.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.stopping {
		return nil, ctl.Errorf(ctl.CodeStopping, "the step is stopping: no more checkpoints on request")
	}
	if c.pending != nil {
		return c.pending, nil
	}
	c.nextID++
	t := ctlsrv.NewTicket(c.nextID)
	c.pending = t
	c.tickets[t.ID()] = t
	c.order = append(c.order, t.ID())
	if len(c.order) > keepTickets {
		delete(c.tickets, c.order[0])
		c.order = c.order[1:]
	}
	return t, nil
}

func (b backend) StartCheckpoints() { b.poke() }

func (b backend) poke() {
	select {
	case b.c.kick <- struct{}{}:
	default: // Serve has a wake-up pending already
	}
}

func (b backend) Ticket(id uint64) (*ctlsrv.Ticket, bool) {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	t, ok := b.c.tickets[id]
	return t, ok
}

// periodic is the periodic checkpoint timer, which the control socket may change while
// Serve waits on it: Serve selects on C() afresh each round (a change wakes it through the
// control kick), and status reads the next due time.
type periodic struct {
	mu       sync.Mutex
	interval time.Duration
	t        *time.Timer
	next     time.Time
}

func newPeriodic(d time.Duration) *periodic {
	p := &periodic{}
	p.Reset(d)
	return p
}

// C is the channel of the current timer; nil when there are no periodic checkpoints.
func (p *periodic) C() <-chan time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.t == nil {
		return nil
	}
	return p.t.C
}

// Reset sets the interval to d (0: no periodic checkpoints), counted from now, and returns
// when the next one is due (zero: none).
func (p *periodic) Reset(d time.Duration) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reset(d)
}

func (p *periodic) reset(d time.Duration) time.Time {
	if p.t != nil {
		p.t.Stop()
		p.t = nil
	}
	p.interval = d
	p.next = time.Time{}
	if d > 0 {
		p.t = time.NewTimer(d)
		p.next = time.Now().Add(d)
	}
	return p.next
}

// Restart starts the current interval again from now (after a checkpoint).
func (p *periodic) Restart() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reset(p.interval)
}

// Get returns the interval and when the next periodic checkpoint is due (zero: none).
func (p *periodic) Get() (time.Duration, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.interval, p.next
}

// Stop stops the timer.
func (p *periodic) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.t != nil {
		p.t.Stop()
	}
}
