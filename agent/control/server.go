// Package control is the agent's side of the control protocol (proto/control): a Unix
// socket in the step's runtime folder that answers status, checkpoint, interval and
// generations requests from inside the job. The agent supplies a Backend.
//
// Nothing a peer sends can crash or stall the agent: lines are bounded (MaxMessage), every
// read and write has a deadline, at most MaxConns connections are served, and each runs in
// its own goroutine. A connection whose process DMTCP is checkpointing (DMTCP writes its
// drain cookie into it) is closed at once, so the checkpoint does not wait for the agent.
package control

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	proto "github.com/slurm-dmtcp/slurm-dmtcp/proto/control"
)

// Backend is what the agent offers to the socket. Errors of type *proto.Error reach the
// client with their code; any other error is reported as "failed".
type Backend interface {
	Hello() proto.Hello
	Status(ctx context.Context) (proto.Status, error)
	Generations() (proto.Generations, error)
	SetInterval(d time.Duration) (proto.IntervalResult, error)
	// RequestCheckpoint queues a checkpoint, or joins the one queued and not yet started.
	RequestCheckpoint() (*Ticket, error)
	// StartCheckpoints lets queued checkpoints start. The server calls it after it has
	// written the reply to a checkpoint request that does not wait, so the reply is on its
	// way before DMTCP suspends the client.
	StartCheckpoints()
	Ticket(id uint64) (*Ticket, bool)
}

// Limits of one server; Defaults() gives the protocol's.
type Limits struct {
	MaxMessage   int
	ReadTimeout  time.Duration
	IdleTimeout  time.Duration
	WriteTimeout time.Duration
	MaxConns     int
	MaxWait      time.Duration
	DefaultWait  time.Duration
}

// Defaults are the limits PROTOCOL.md documents.
func Defaults() Limits {
	return Limits{MaxMessage: proto.MaxMessage, ReadTimeout: proto.ReadTimeout, IdleTimeout: proto.IdleTimeout,
		WriteTimeout: proto.WriteTimeout, MaxConns: proto.MaxConns, MaxWait: proto.MaxWait, DefaultWait: proto.DefaultWait}
}

// Server serves one socket.
type Server struct {
	Backend Backend
	Log     *logrus.Entry
	// Check says whether a peer may talk to the agent (Guard.Check); nil allows everyone.
	Check  func(Cred) error
	Limits Limits

	mu      sync.Mutex
	ln      *net.UnixListener
	conns   map[*net.UnixConn]struct{}
	closed  bool
	wg      sync.WaitGroup
	stopped chan struct{}
}

// Listen creates the socket at path with mode 0600, replacing a stale one. Its folder must
// already be private (the step's runtime folder is 0700).
func Listen(path string) (*net.UnixListener, error) {
	if len(path) >= 108 {
		return nil, fmt.Errorf("control socket %s: path of %d bytes is too long for a Unix socket (max 107); use a shorter runtime_dir", path, len(path))
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control socket %s: exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control socket %s: remove stale socket: %w", path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: chmod 0600: %w", path, err)
	}
	return ln, nil
}

// Serve accepts connections until Close. It returns nil after Close.
func (s *Server) Serve(ln *net.UnixListener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.ln = ln
	s.conns = map[*net.UnixConn]struct{}{}
	s.stopped = make(chan struct{})
	if s.Limits == (Limits{}) {
		s.Limits = Defaults()
	}
	s.mu.Unlock()
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.Log.WithError(err).Warn("control socket: accept")
			time.Sleep(100 * time.Millisecond) // EMFILE and friends: do not spin
			continue
		}
		if !s.track(c) {
			s.Log.WithField("limit", s.Limits.MaxConns).Warn("control socket: connection refused: too many open")
			s.reject(c, proto.Errorf(proto.CodeBusy, "%d connections already open; try again", s.Limits.MaxConns), false)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.handle(c)
		}()
	}
}

// Close stops accepting, closes every connection (waiting requests end) and waits for the
// handlers. The socket file is removed.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	if s.stopped != nil {
		close(s.stopped)
	}
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Server) track(c *net.UnixConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(s.conns) >= s.Limits.MaxConns {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *net.UnixConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// reject answers e and closes the connection. With drain, it first reads (bounded, for
// a second) what the peer sends, so that the peer's request does not fail with EPIPE before
// it can read the answer.
func (s *Server) reject(c *net.UnixConn, e *proto.Error, drain bool) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_ = proto.EncodeResponse(c, proto.ReplyError(0, e))
	if drain {
		s.linger(c)
	}
	c.Close()
}

// item is what the connection's reader hands the handler: a line, or why reading stopped.
type item struct {
	line  []byte
	err   error
	drain bool // DMTCP is checkpointing the peer
}

func (s *Server) handle(c *net.UnixConn) {
	log := s.Log
	if cred, err := PeerCred(c); err != nil {
		log.WithError(err).Warn("control socket: connection refused")
		s.reject(c, proto.Errorf(proto.CodeForbidden, "cannot identify the connecting process: %v", err), true)
		return
	} else {
		log = log.WithFields(logrus.Fields{"peer_pid": cred.PID, "peer_uid": cred.UID})
		if s.Check != nil {
			if err := s.Check(cred); err != nil {
				log.WithError(err).Warn("control socket: connection refused")
				s.reject(c, proto.Errorf(proto.CodeForbidden, "%v", err), true)
				return
			}
		}
	}

	items := make(chan item)
	gone := make(chan struct{}) // closed when the reader stops: EOF, error, drain cookie
	drained := new(bool)        // set before gone closes: it was DMTCP's drain cookie
	go s.read(c, items, gone, drained)
	defer func() {
		c.Close() // unblocks the reader
		for range items {
		}
	}()
	idle := time.NewTimer(s.Limits.IdleTimeout)
	defer idle.Stop()
	for {
		select {
		case <-idle.C:
			log.Debug("control socket: idle connection closed")
			return
		case it, ok := <-items:
			if !ok {
				return
			}
			if it.drain {
				log.Info("control socket: the peer is being checkpointed by DMTCP; connection closed so the checkpoint can go on")
				return
			}
			if it.err != nil {
				s.readFailed(c, log, it.err)
				return
			}
			if !s.serveLine(c, log, it.line, gone, drained) {
				return
			}
			idle.Reset(s.Limits.IdleTimeout)
		}
	}
}

// read delivers lines until EOF, an error, a bad line, or DMTCP's drain cookie.
func (s *Server) read(c *net.UnixConn, items chan<- item, gone chan<- struct{}, drained *bool) {
	defer close(items)
	br := bufio.NewReaderSize(c, 4096)
	send := func(it item) {
		if it.err != nil || it.drain {
			*drained = it.drain
			close(gone)
		}
		items <- it
	}
	for {
		// Between requests there is no read deadline: the handler's idle timer closes the
		// connection. Once a request starts, it must be complete within ReadTimeout.
		_ = c.SetReadDeadline(time.Time{})
		if _, err := br.Peek(1); err != nil {
			send(item{err: err})
			return
		}
		if first, _ := br.Peek(br.Buffered()); len(first) > 0 && first[0] == '[' {
			p := []byte(proto.DMTCPDrainPrefix)
			if bytes.HasPrefix(first, p) || bytes.HasPrefix(p, first) {
				send(item{drain: true})
				return
			}
		}
		_ = c.SetReadDeadline(time.Now().Add(s.Limits.ReadTimeout))
		line, err := proto.ReadLine(br, s.Limits.MaxMessage)
		if err != nil {
			send(item{err: err})
			return
		}
		send(item{line: line})
	}
}

func (s *Server) readFailed(c *net.UnixConn, log *logrus.Entry, err error) {
	var e *proto.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return
	case errors.Is(err, proto.ErrTooLarge):
		e = proto.Errorf(proto.CodeTooLarge, "request longer than %d bytes; connection closed", s.Limits.MaxMessage)
	case errors.Is(err, proto.ErrTruncated):
		e = proto.Errorf(proto.CodeBadRequest, "request truncated: the connection was shut down before its newline")
	case errors.Is(err, os.ErrDeadlineExceeded):
		e = proto.Errorf(proto.CodeTimeout, "request not complete within %s of its first byte; connection closed", s.Limits.ReadTimeout)
	default:
		log.WithError(err).Debug("control socket: read")
		return
	}
	log.WithField("code", e.Code).Info("control socket: bad request: " + e.Message)
	s.write(c, proto.ReplyError(0, e))
	s.linger(c)
}

// linger ends a connection whose peer may still be sending: it shuts down writing and
// discards what comes (bounded in bytes and to one second), so that the peer reads the
// answer and then EOF rather than a reset.
func (s *Server) linger(c *net.UnixConn) {
	_ = c.CloseWrite()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.CopyN(io.Discard, c, int64(4*s.Limits.MaxMessage))
}

func (s *Server) write(c *net.UnixConn, r proto.Response) bool {
	_ = c.SetWriteDeadline(time.Now().Add(s.Limits.WriteTimeout))
	return proto.EncodeResponse(c, r) == nil
}

// serveLine answers one request line; false ends the connection.
func (s *Server) serveLine(c *net.UnixConn, log *logrus.Entry, line []byte, gone <-chan struct{}, drained *bool) bool {
	req, perr := proto.DecodeRequest(line)
	if perr != nil {
		log.WithField("code", perr.Code).Info("control socket: bad request: " + perr.Message)
		return s.write(c, proto.ReplyError(req.ID, perr))
	}
	log = log.WithFields(logrus.Fields{"op": req.Op, "request_id": req.ID})
	result, err, after := s.dispatch(req, gone)
	if errors.Is(err, errGone) { // gone is closed: drained is set
		if *drained {
			log.Info("control socket: the peer is being checkpointed by DMTCP; connection closed so the checkpoint can go on")
		} else {
			log.Info("control socket: the peer went away during the request")
		}
		return false
	}
	var resp proto.Response
	if err != nil {
		var e *proto.Error
		if !errors.As(err, &e) {
			e = proto.Errorf(proto.CodeFailed, "%v", err)
		}
		log.WithField("code", e.Code).Info("control socket: " + e.Message)
		resp = proto.ReplyError(req.ID, e)
	} else if resp, err = proto.Reply(req.ID, result); err != nil {
		resp = proto.ReplyError(req.ID, proto.Errorf(proto.CodeInternal, "%v", err))
	} else {
		log.Debug("control socket: request served")
	}
	ok := s.write(c, resp)
	if after != nil {
		after()
	}
	return ok
}

var errGone = errors.New("peer gone")

// dispatch runs one request. after, when not nil, runs once the reply is written.
func (s *Server) dispatch(req proto.Request, gone <-chan struct{}) (result any, err error, after func()) {
	b := s.Backend
	switch req.Op {
	case proto.OpPing:
		return b.Hello(), nil, nil
	case proto.OpStatus:
		ctx, cancel := context.WithTimeout(context.Background(), s.Limits.ReadTimeout)
		defer cancel()
		st, err := b.Status(ctx)
		return st, err, nil
	case proto.OpGenerations:
		g, err := b.Generations()
		return g, err, nil
	case proto.OpInterval:
		var a proto.IntervalArgs
		if e := proto.DecodeArgs(req, &a); e != nil {
			return nil, e, nil
		}
		if a.Interval == nil {
			return nil, proto.Errorf(proto.CodeBadRequest, "interval: missing argument \"interval\"; want %s, or 0 for no periodic checkpoints", proto.DurationForms), nil
		}
		r, err := b.SetInterval(time.Duration(*a.Interval))
		return r, err, nil
	case proto.OpCheckpoint:
		var a proto.CheckpointArgs
		if e := proto.DecodeArgs(req, &a); e != nil {
			return nil, e, nil
		}
		wait, e := s.waitTime(a.Timeout)
		if e != nil {
			return nil, e, nil
		}
		t, err := b.RequestCheckpoint()
		if err != nil {
			return nil, err, nil
		}
		if !a.Wait {
			return t.Result(), nil, b.StartCheckpoints
		}
		b.StartCheckpoints()
		r, err := s.await(t, wait, gone)
		return r, err, nil
	case proto.OpWait:
		var a proto.WaitArgs
		if e := proto.DecodeArgs(req, &a); e != nil {
			return nil, e, nil
		}
		wait, e := s.waitTime(a.Timeout)
		if e != nil {
			return nil, e, nil
		}
		t, ok := b.Ticket(a.Ticket)
		if !ok {
			return nil, proto.Errorf(proto.CodeNotFound, "no checkpoint ticket %d in this agent (tickets are kept for the agent's life; ping tells whether the job was restarted since)", a.Ticket), nil
		}
		r, err := s.await(t, wait, gone)
		return r, err, nil
	}
	return nil, proto.Errorf(proto.CodeInternal, "op %q has no handler", req.Op), nil
}

func (s *Server) waitTime(d proto.Duration) (time.Duration, *proto.Error) {
	w := time.Duration(d)
	switch {
	case w == 0:
		return s.Limits.DefaultWait, nil
	case w > s.Limits.MaxWait:
		return 0, proto.Errorf(proto.CodeBadRequest, "timeout %s: at most %s", w, s.Limits.MaxWait)
	}
	return w, nil
}

// await waits for a ticket, the timeout, the peer going away, or the server closing.
func (s *Server) await(t *Ticket, wait time.Duration, gone <-chan struct{}) (proto.CheckpointResult, error) {
	tm := time.NewTimer(wait)
	defer tm.Stop()
	select {
	case <-t.Done():
		r := t.Result()
		if r.State == proto.TicketFailed {
			return r, &proto.Error{Code: proto.CodeFailed, Message: "checkpoint failed: " + r.Error, Ticket: t.ID()}
		}
		return r, nil
	case <-tm.C:
		return proto.CheckpointResult{}, &proto.Error{Code: proto.CodeTimeout,
			Message: fmt.Sprintf("checkpoint not finished after %s; it goes on: wait for ticket %d to see how it ends", wait, t.ID()), Ticket: t.ID()}
	case <-gone:
		return proto.CheckpointResult{}, errGone
	case <-s.stopped:
		return proto.CheckpointResult{}, &proto.Error{Code: proto.CodeStopping, Message: "the agent is stopping", Ticket: t.ID()}
	}
}
