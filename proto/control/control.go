// Package control is the request/response protocol between a job and its slurm-dmtcp agent,
// over the agent's Unix socket (SLURM_DMTCP_CONTROL_SOCKET). One JSON object per line each
// way. PROTOCOL.md in this folder is the reference; this file holds the wire types and their
// limits, shared by the agent (agent/control), dmtcpctl and the tests.
package control

import (
	"encoding/json"
	"fmt"
	"time"
)

// Version is the protocol version: the "v" field of every request and response.
const Version = 1

// Limits of the protocol (PROTOCOL.md, "Limits").
const (
	// MaxMessage is the largest request or response line, newline included.
	MaxMessage = 64 << 10
	// ReadTimeout bounds the time from the first byte of a request to its newline.
	ReadTimeout = 5 * time.Second
	// IdleTimeout closes a connection that sends nothing for this long (before or between requests).
	IdleTimeout = 30 * time.Second
	// WriteTimeout bounds writing one response.
	WriteTimeout = 5 * time.Second
	// MaxConns is how many connections the agent serves at once; more get "busy".
	MaxConns = 16
	// MaxWait is the longest a checkpoint or wait request may ask to wait.
	MaxWait = 24 * time.Hour
	// DefaultWait is the wait of a blocking checkpoint request that names no timeout.
	DefaultWait = 30 * time.Minute
	// MaxInterval is the longest periodic interval (the plugin's limit too).
	MaxInterval = 366 * 24 * time.Hour
)

// SocketName is the socket's file name in the step's runtime folder.
const SocketName = "control.sock"

// DMTCPDrainPrefix starts the bytes DMTCP writes into every socket of a process it is
// checkpointing ("[dmtcp{v0<DRAIN!"). DMTCP then waits until the peer answers or closes, so
// the agent closes a connection as soon as it sees this.
const DMTCPDrainPrefix = "[dmtcp{"

// Ops.
const (
	OpPing        = "ping"
	OpStatus      = "status"
	OpCheckpoint  = "checkpoint"
	OpWait        = "wait"
	OpInterval    = "interval"
	OpGenerations = "generations"
)

// Ops lists every op in the order PROTOCOL.md documents them.
func Ops() []string {
	return []string{OpPing, OpStatus, OpCheckpoint, OpWait, OpInterval, OpGenerations}
}

// Code is a machine-readable error code.
type Code string

// Error codes (PROTOCOL.md, "Errors").
const (
	CodeBadRequest         Code = "bad_request"         // not a valid request: syntax, fields, argument values
	CodeUnsupportedVersion Code = "unsupported_version" // "v" is not Version
	CodeUnknownOp          Code = "unknown_op"          // "op" is not one of Ops()
	CodeTooLarge           Code = "too_large"           // the line exceeds MaxMessage; the connection is closed
	CodeTimeout            Code = "timeout"             // request not complete within ReadTimeout, or the wait ran out
	CodeBusy               Code = "busy"                // MaxConns connections already open
	CodeForbidden          Code = "forbidden"           // the peer is another user or another job
	CodePolicy             Code = "policy"              // refused by the site's policy (min_interval, ...)
	CodeNotFound           Code = "not_found"           // unknown checkpoint ticket
	CodeStopping           Code = "stopping"            // the step is ending (SIGTERM, end of tasks)
	CodeFailed             Code = "failed"              // the operation was tried and failed
	CodeInternal           Code = "internal"            // a bug in the agent
)

// Request is one request line.
type Request struct {
	V    int             `json:"v"`
	ID   uint64          `json:"id"`
	Op   string          `json:"op"`
	Args json.RawMessage `json:"args,omitempty"`
}

// Response is one response line; exactly one of Result (OK) and Error is set.
type Response struct {
	V      int             `json:"v"`
	ID     uint64          `json:"id"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

// Error is an error reply. Ticket is set when it concerns a checkpoint that was queued.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	Ticket  uint64 `json:"ticket,omitempty"`
}

func (e *Error) Error() string {
	if e.Ticket != 0 {
		return fmt.Sprintf("%s: %s (ticket %d)", e.Code, e.Message, e.Ticket)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf makes an *Error.
func Errorf(code Code, format string, a ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, a...)}
}

// CheckpointArgs are the arguments of "checkpoint".
type CheckpointArgs struct {
	// Wait: reply when the checkpoint is committed (or failed), not when it is queued.
	Wait bool `json:"wait,omitempty"`
	// Timeout bounds the wait (DefaultWait when 0). The checkpoint itself goes on.
	Timeout Duration `json:"timeout,omitempty"`
}

// WaitArgs are the arguments of "wait".
type WaitArgs struct {
	Ticket  uint64   `json:"ticket"`
	Timeout Duration `json:"timeout,omitempty"`
}

// IntervalArgs are the arguments of "interval".
type IntervalArgs struct {
	Interval *Duration `json:"interval"`
}

// Hello is the result of "ping": who answers. RestartCount and Started change when Slurm runs
// the job again; a client that sees them change knows its process was restored.
type Hello struct {
	Protocol           int       `json:"protocol"`
	JobID              string    `json:"job_id"`
	Step               string    `json:"step"`
	RestartCount       int       `json:"restart_count"`
	RestoredGeneration int       `json:"restored_generation,omitempty"`
	AgentPID           int       `json:"agent_pid"`
	Started            time.Time `json:"started"`
}

// Coordinator is where the step's dmtcp_coordinator listens.
type Coordinator struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

// Generation is one committed checkpoint generation.
type Generation struct {
	Number int       `json:"number"`
	Time   time.Time `json:"time,omitempty"`
	Bytes  int64     `json:"bytes"`
	Reason string    `json:"reason,omitempty"`
	Path   string    `json:"path"`
	// Error says why the manifest could not be read (a damaged generation).
	Error string `json:"error,omitempty"`
}

// Generations is the result of "generations".
type Generations struct {
	Keep        int          `json:"keep"`
	Generations []Generation `json:"generations"`
}

// LastCheckpoint is the outcome of the most recent checkpoint attempt.
type LastCheckpoint struct {
	Time       time.Time `json:"time"`
	Reason     string    `json:"reason"`
	OK         bool      `json:"ok"`
	Generation int       `json:"generation,omitempty"`
	Bytes      int64     `json:"bytes,omitempty"`
	DurationS  float64   `json:"duration_s"`
	Error      string    `json:"error,omitempty"`
}

// InProgress describes the checkpoint being taken.
type InProgress struct {
	Started time.Time `json:"started"`
	Reason  string    `json:"reason"`
	Ticket  uint64    `json:"ticket,omitempty"`
}

// States of a step, in Status.State.
const (
	StateRunning       = "running"       // computation runs, no checkpoint in progress
	StateCheckpointing = "checkpointing" // a checkpoint is being taken or committed
	StateStopping      = "stopping"      // SIGTERM or end of the step: no more checkpoints
)

// Status is the result of "status".
type Status struct {
	Hello
	State       string      `json:"state"`
	Coordinator Coordinator `json:"coordinator"`
	// Processes under DMTCP (the coordinator's peers); -1 when the coordinator did not answer.
	Processes        int             `json:"processes"`
	CoordinatorError string          `json:"coordinator_error,omitempty"`
	IntervalS        int64           `json:"interval_s"`
	MinIntervalS     int64           `json:"min_interval_s"`
	LastCheckpoint   *LastCheckpoint `json:"last_checkpoint,omitempty"`
	NextCheckpoint   *time.Time      `json:"next_checkpoint,omitempty"`
	InProgress       *InProgress     `json:"in_progress,omitempty"`
	StepDir          string          `json:"stepdir"`
	Generations
}

// Ticket states, in CheckpointResult.State.
const (
	TicketQueued  = "queued"
	TicketRunning = "running"
	TicketDone    = "done"
	TicketFailed  = "failed"
)

// CheckpointResult is the result of "checkpoint" and "wait".
type CheckpointResult struct {
	Ticket     uint64  `json:"ticket"`
	State      string  `json:"state"`
	Generation int     `json:"generation,omitempty"`
	Bytes      int64   `json:"bytes,omitempty"`
	Path       string  `json:"path,omitempty"`
	DurationS  float64 `json:"duration_s,omitempty"`
	Error      string  `json:"error,omitempty"`
}

// IntervalResult is the result of "interval".
type IntervalResult struct {
	OldS           int64      `json:"old_s"`
	IntervalS      int64      `json:"interval_s"`
	NextCheckpoint *time.Time `json:"next_checkpoint,omitempty"`
}
