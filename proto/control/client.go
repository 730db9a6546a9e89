package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// EnvSocket is the variable that names the agent's socket in a --dmtcp job (the ready-message
// key "control_socket", passed on by the plugin).
const EnvSocket = "SLURM_DMTCP_CONTROL_SOCKET"

// Client talks to one agent, one connection per request.
type Client struct {
	Path string
	next uint64
}

// NewClient returns a client for the socket at path, or for $SLURM_DMTCP_CONTROL_SOCKET
// when path is empty.
func NewClient(path string) (*Client, error) {
	if path == "" {
		path = os.Getenv(EnvSocket)
	}
	if path == "" {
		return nil, fmt.Errorf("%s is not set: not inside a --dmtcp job step (use --job ID, or --socket PATH)", EnvSocket)
	}
	return &Client{Path: path}, nil
}

// Do sends one request and decodes the result into result (may be nil). Errors from the
// agent are *Error. The context bounds the whole exchange.
func (c *Client) Do(ctx context.Context, op string, args, result any) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.Path)
	if err != nil {
		return fmt.Errorf("connect to the agent at %s: %w", c.Path, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c.next++
	// A failed send may still have an answer waiting (the agent refused the connection).
	sendErr := EncodeRequest(conn, c.next, op, args)
	line, err := ReadLine(bufio.NewReaderSize(conn, 4096), MaxMessage)
	if err != nil && sendErr != nil {
		return fmt.Errorf("send %s: %w", op, sendErr)
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: no answer from the agent: %w", op, ctx.Err())
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("%s: no answer from the agent in time: %w", op, context.DeadlineExceeded)
		}
		return fmt.Errorf("%s: read the agent's answer: %w", op, err)
	}
	r, err := DecodeResponse(line, result)
	if err != nil {
		return err
	}
	if r.ID != c.next && sendErr == nil {
		return fmt.Errorf("%s: answer for request %d, want %d", op, r.ID, c.next)
	}
	return nil
}
