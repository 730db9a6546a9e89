package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	proto "github.com/slurm-dmtcp/slurm-dmtcp/proto/control"
)

// fakeBackend records calls; checkpoints finish when the test says so.
type fakeBackend struct {
	mu       sync.Mutex
	interval time.Duration
	next     uint64
	pending  *Ticket
	tickets  map[uint64]*Ticket
	started  chan uint64 // receives the pending ticket id on StartCheckpoints
	stopping bool
}

func newFake() *fakeBackend {
	return &fakeBackend{interval: time.Hour, tickets: map[uint64]*Ticket{}, started: make(chan uint64, 16)}
}

func (f *fakeBackend) Hello() proto.Hello {
	return proto.Hello{Protocol: proto.Version, JobID: "42", Step: "batch", AgentPID: 7}
}

func (f *fakeBackend) Status(ctx context.Context) (proto.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return proto.Status{Hello: f.Hello(), State: proto.StateRunning, Processes: 2, IntervalS: int64(f.interval / time.Second)}, nil
}

func (f *fakeBackend) Generations() (proto.Generations, error) {
	return proto.Generations{Keep: 2, Generations: []proto.Generation{{Number: 3, Bytes: 10, Path: "/x/gen-000003"}}}, nil
}

func (f *fakeBackend) SetInterval(d time.Duration) (proto.IntervalResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d > 0 && d < time.Minute {
		return proto.IntervalResult{}, proto.Errorf(proto.CodePolicy, "interval %s is below min_interval 1m0s", d)
	}
	old := f.interval
	f.interval = d
	return proto.IntervalResult{OldS: int64(old / time.Second), IntervalS: int64(d / time.Second)}, nil
}

func (f *fakeBackend) RequestCheckpoint() (*Ticket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopping {
		return nil, proto.Errorf(proto.CodeStopping, "the step is stopping")
	}
	if f.pending == nil {
		f.next++
		f.pending = NewTicket(f.next)
		f.tickets[f.next] = f.pending
	}
	return f.pending, nil
}

func (f *fakeBackend) StartCheckpoints() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pending != nil {
		f.pending.SetRunning()
		f.started <- f.pending.ID()
		f.pending = nil
	}
}

func (f *fakeBackend) Ticket(id uint64) (*Ticket, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tickets[id]
	return t, ok
}

func (f *fakeBackend) finish(id uint64, r proto.CheckpointResult) {
	t, _ := f.Ticket(id)
	t.Finish(r)
}

type rig struct {
	srv  *Server
	fake *fakeBackend
	path string
	log  *syncWriter
}

func (r *rig) logs() string {
	r.log.mu.Lock()
	defer r.log.mu.Unlock()
	return r.log.w.(*strings.Builder).String()
}

func start(t *testing.T, mod func(*Server)) *rig {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctl") // short: sun_path is 108 bytes
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, proto.SocketName)
	ln, err := Listen(path)
	require.NoError(t, err)
	logs := &syncWriter{w: &strings.Builder{}}
	l := logrus.New()
	l.SetOutput(logs)
	l.SetLevel(logrus.DebugLevel)
	fake := newFake()
	s := &Server{Backend: fake, Log: logrus.NewEntry(l), Limits: Defaults()}
	if mod != nil {
		mod(s)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		require.NoError(t, <-done)
	})
	return &rig{srv: s, fake: fake, path: path, log: logs}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

type conn struct {
	t  *testing.T
	c  *net.UnixConn
	br *bufio.Reader
}

func (r *rig) dial(t *testing.T) *conn {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: r.path, Net: "unix"})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &conn{t: t, c: c, br: bufio.NewReader(c)}
}

func (c *conn) send(s string) {
	_, err := io.WriteString(c.c, s)
	require.NoError(c.t, err)
}

// recv reads one response; it decodes the result into v when ok.
func (c *conn) recv(v any) (proto.Response, error) {
	line, err := proto.ReadLine(c.br, proto.MaxMessage)
	require.NoError(c.t, err)
	return proto.DecodeResponse(line, v)
}

func (c *conn) eof() bool {
	_, err := c.br.ReadByte()
	return errors.Is(err, io.EOF)
}

func code(err error) proto.Code {
	var e *proto.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestRequests(t *testing.T) {
	r := start(t, nil)
	c := r.dial(t)

	var h proto.Hello
	c.send(`{"v":1,"id":1,"op":"ping"}` + "\n")
	resp, err := c.recv(&h)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), resp.ID)
	assert.Equal(t, "42", h.JobID)

	var st proto.Status
	c.send(`{"v":1,"id":2,"op":"status"}` + "\n")
	_, err = c.recv(&st)
	require.NoError(t, err)
	assert.Equal(t, 2, st.Processes)
	assert.Equal(t, int64(3600), st.IntervalS)

	var g proto.Generations
	c.send(`{"v":1,"id":3,"op":"generations"}` + "\n")
	_, err = c.recv(&g)
	require.NoError(t, err)
	require.Len(t, g.Generations, 1)
	assert.Equal(t, 3, g.Generations[0].Number)

	var ir proto.IntervalResult
	c.send(`{"v":1,"id":4,"op":"interval","args":{"interval":"10m"}}` + "\n")
	_, err = c.recv(&ir)
	require.NoError(t, err)
	assert.Equal(t, proto.IntervalResult{OldS: 3600, IntervalS: 600}, ir)
}

func TestErrorReplies(t *testing.T) {
	r := start(t, nil)
	for _, tc := range []struct {
		name, line string
		code       proto.Code
		msg        string
	}{
		{"not json", "hello", proto.CodeBadRequest, "not a request object"},
		{"old version", `{"v":0,"op":"status"}`, proto.CodeUnsupportedVersion, "version 0"},
		{"unknown op", `{"v":1,"id":9,"op":"reboot"}`, proto.CodeUnknownOp, `"reboot"`},
		{"bad arg", `{"v":1,"op":"interval","args":{"interval":"soon"}}`, proto.CodeBadRequest, "90s, 30m"},
		{"missing arg", `{"v":1,"op":"interval"}`, proto.CodeBadRequest, `missing argument "interval"`},
		{"policy", `{"v":1,"op":"interval","args":{"interval":5}}`, proto.CodePolicy, "min_interval"},
		{"unknown ticket", `{"v":1,"op":"wait","args":{"ticket":99}}`, proto.CodeNotFound, "ticket 99"},
		{"wait too long", `{"v":1,"op":"checkpoint","args":{"wait":true,"timeout":"30d"}}`, proto.CodeBadRequest, "at most"},
		{"unknown arg", `{"v":1,"op":"checkpoint","args":{"wiat":true}}`, proto.CodeBadRequest, `unknown field "wiat"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := r.dial(t)
			c.send(tc.line + "\n")
			_, err := c.recv(nil)
			require.Error(t, err)
			assert.Equal(t, tc.code, code(err))
			assert.Contains(t, err.Error(), tc.msg)
			// The connection stays usable after a bad request.
			c.send(`{"v":1,"id":2,"op":"ping"}` + "\n")
			_, err = c.recv(nil)
			assert.NoError(t, err)
		})
	}
}

func TestCheckpointNoWaitRepliesBeforeStart(t *testing.T) {
	r := start(t, nil)
	c := r.dial(t)
	c.send(`{"v":1,"id":1,"op":"checkpoint"}` + "\n")
	var res proto.CheckpointResult
	_, err := c.recv(&res)
	require.NoError(t, err)
	assert.Equal(t, proto.TicketQueued, res.State, "the reply is written before the checkpoint may start")
	id := <-r.fake.started
	assert.Equal(t, res.Ticket, id)

	r.fake.finish(id, proto.CheckpointResult{State: proto.TicketDone, Generation: 4})
	c.send(fmt.Sprintf(`{"v":1,"id":2,"op":"wait","args":{"ticket":%d}}`+"\n", id))
	_, err = c.recv(&res)
	require.NoError(t, err)
	assert.Equal(t, proto.CheckpointResult{Ticket: id, State: proto.TicketDone, Generation: 4}, res)
}

func TestCheckpointWait(t *testing.T) {
	r := start(t, nil)
	c := r.dial(t)
	c.send(`{"v":1,"id":1,"op":"checkpoint","args":{"wait":true,"timeout":60}}` + "\n")
	id := <-r.fake.started

	// Status answers while the checkpoint runs.
	c2 := r.dial(t)
	c2.send(`{"v":1,"id":1,"op":"status"}` + "\n")
	_, err := c2.recv(nil)
	require.NoError(t, err)

	r.fake.finish(id, proto.CheckpointResult{State: proto.TicketDone, Generation: 5, Bytes: 100})
	var res proto.CheckpointResult
	_, err = c.recv(&res)
	require.NoError(t, err)
	assert.Equal(t, 5, res.Generation)
}

func TestCheckpointFailedAndTimeout(t *testing.T) {
	r := start(t, nil)
	c := r.dial(t)
	c.send(`{"v":1,"id":1,"op":"checkpoint","args":{"wait":true,"timeout":0.2}}` + "\n")
	id := <-r.fake.started
	_, err := c.recv(nil)
	require.Error(t, err)
	var e *proto.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, proto.CodeTimeout, e.Code)
	assert.Equal(t, id, e.Ticket, "the timeout names the ticket to wait for")

	r.fake.finish(id, proto.CheckpointResult{State: proto.TicketFailed, Error: "no process under DMTCP"})
	c.send(fmt.Sprintf(`{"v":1,"id":2,"op":"wait","args":{"ticket":%d}}`+"\n", id))
	_, err = c.recv(nil)
	require.ErrorAs(t, err, &e)
	assert.Equal(t, proto.CodeFailed, e.Code)
	assert.Contains(t, e.Message, "no process under DMTCP")
}

func TestRequestsJoinQueuedCheckpoint(t *testing.T) {
	r := start(t, nil)
	t1, err := r.fake.RequestCheckpoint()
	require.NoError(t, err)
	c := r.dial(t)
	c.send(`{"v":1,"id":1,"op":"checkpoint"}` + "\n")
	var res proto.CheckpointResult
	_, err = c.recv(&res)
	require.NoError(t, err)
	assert.Equal(t, t1.ID(), res.Ticket, "a request before the checkpoint starts joins it")
}

func TestStoppingRefusesCheckpoint(t *testing.T) {
	r := start(t, nil)
	r.fake.mu.Lock()
	r.fake.stopping = true
	r.fake.mu.Unlock()
	c := r.dial(t)
	c.send(`{"v":1,"op":"checkpoint","args":{"wait":true}}` + "\n")
	_, err := c.recv(nil)
	assert.Equal(t, proto.CodeStopping, code(err))
}

func TestOversizedRequest(t *testing.T) {
	r := start(t, nil)
	c := r.dial(t)
	go func() { _, _ = c.c.Write([]byte(strings.Repeat("x", proto.MaxMessage+10))) }()
	_, err := c.recv(nil)
	assert.Equal(t, proto.CodeTooLarge, code(err))
	assert.True(t, c.eof(), "connection closed after too_large")
}

func TestTruncatedRequest(t *testing.T) {
	r := start(t, nil)
	c := r.dial(t)
	c.send(`{"v":1,"op":"sta`)
	require.NoError(t, c.c.CloseWrite())
	_, err := c.recv(nil)
	assert.Equal(t, proto.CodeBadRequest, code(err))
	assert.Contains(t, err.Error(), "truncated")
}

func TestSlowRequest(t *testing.T) {
	r := start(t, func(s *Server) { s.Limits.ReadTimeout = 200 * time.Millisecond })
	c := r.dial(t)
	c.send(`{"v":1,`)
	begin := time.Now()
	_, err := c.recv(nil)
	assert.Equal(t, proto.CodeTimeout, code(err))
	assert.Less(t, time.Since(begin), 3*time.Second)
	assert.True(t, c.eof())
	// The server still serves others.
	c2 := r.dial(t)
	c2.send(`{"v":1,"op":"ping"}` + "\n")
	_, err = c2.recv(nil)
	assert.NoError(t, err)
}

func TestIdleConnectionClosed(t *testing.T) {
	r := start(t, func(s *Server) { s.Limits.IdleTimeout = 200 * time.Millisecond })
	c := r.dial(t)
	begin := time.Now()
	assert.True(t, c.eof())
	assert.Less(t, time.Since(begin), 3*time.Second)
}

func TestDMTCPDrainClosesWaitingConnection(t *testing.T) {
	r := start(t, nil)
	c := r.dial(t)
	c.send(`{"v":1,"id":1,"op":"checkpoint","args":{"wait":true}}` + "\n")
	id := <-r.fake.started
	c.send("[dmtcp{v0<DRAIN!\x00") // what DMTCP writes when it checkpoints the client
	begin := time.Now()
	assert.True(t, c.eof(), "the agent closes the connection so DMTCP's drain completes")
	assert.Less(t, time.Since(begin), 2*time.Second)
	tk, ok := r.fake.Ticket(id)
	require.True(t, ok)
	assert.Equal(t, proto.TicketRunning, tk.Result().State, "the checkpoint goes on")
	assert.Eventually(t, func() bool { return strings.Contains(r.logs(), "the peer is being checkpointed by DMTCP") }, 2*time.Second, 20*time.Millisecond)
}

func TestDMTCPDrainOnIdleConnection(t *testing.T) {
	r := start(t, nil)
	c := r.dial(t)
	c.send("[dmtcp{v0<DRAIN!\x00")
	assert.True(t, c.eof())
}

func TestConnectionLimit(t *testing.T) {
	r := start(t, func(s *Server) { s.Limits.MaxConns = 2 })
	a, b := r.dial(t), r.dial(t)
	a.send(`{"v":1,"op":"ping"}` + "\n")
	_, err := a.recv(nil)
	require.NoError(t, err)
	b.send(`{"v":1,"op":"ping"}` + "\n")
	_, err = b.recv(nil)
	require.NoError(t, err)
	c := r.dial(t)
	_, err = c.recv(nil)
	assert.Equal(t, proto.CodeBusy, code(err))
	a.c.Close()
	require.Eventually(t, func() bool {
		d := r.dial(t)
		d.send(`{"v":1,"op":"ping"}` + "\n")
		_, err := d.recv(nil)
		d.c.Close()
		return err == nil
	}, 5*time.Second, 50*time.Millisecond, "a slot frees when a connection ends")
}

func TestForbiddenPeer(t *testing.T) {
	var mu sync.Mutex
	var seen Cred
	r := start(t, func(s *Server) {
		s.Check = func(c Cred) error {
			mu.Lock()
			defer mu.Unlock()
			seen = c
			return fmt.Errorf("process %d belongs to job 7; this agent serves job 42 only", c.PID)
		}
	})
	// The client's request may race the refusal: it still reads the answer.
	cl, err := proto.NewClient(r.path)
	require.NoError(t, err)
	for i := 0; i < 20; i++ {
		err = cl.Do(context.Background(), proto.OpStatus, nil, nil)
		require.Equal(t, proto.CodeForbidden, code(err), "attempt %d: %v", i, err)
	}
	assert.Contains(t, err.Error(), "job 7")
	c := r.dial(t)
	_, err = c.recv(nil)
	assert.Equal(t, proto.CodeForbidden, code(err))
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, os.Getpid(), seen.PID, "SO_PEERCRED names the connecting process")
	assert.Equal(t, os.Getuid(), seen.UID)
	assert.True(t, c.eof())
}

func TestCloseEndsWaits(t *testing.T) {
	r := start(t, nil)
	c := r.dial(t)
	c.send(`{"v":1,"op":"checkpoint","args":{"wait":true}}` + "\n")
	<-r.fake.started
	done := make(chan struct{})
	go func() { r.srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return while a request waited")
	}
	_, err := os.Stat(r.path)
	assert.True(t, os.IsNotExist(err), "socket file removed")
}

func TestListen(t *testing.T) {
	dir, err := os.MkdirTemp("", "ctl")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "s")

	ln, err := Listen(p)
	require.NoError(t, err)
	fi, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	// A stale socket (agent killed) is replaced.
	ln.SetUnlinkOnClose(false)
	ln.Close()
	ln, err = Listen(p)
	require.NoError(t, err)
	ln.Close()

	f := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(f, nil, 0o600))
	_, err = Listen(f)
	assert.ErrorContains(t, err, "not a socket")

	_, err = Listen("/tmp/" + strings.Repeat("d", 120))
	assert.ErrorContains(t, err, "too long")
}
