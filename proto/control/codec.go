package control

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// ErrTooLarge is returned by ReadLine for a line longer than MaxMessage.
var ErrTooLarge = errors.New("message longer than the protocol's limit")

// ErrTruncated is returned by ReadLine when the stream ends inside a line.
var ErrTruncated = errors.New("message truncated: the connection ended before its newline")

// ReadLine reads one line of at most limit bytes (newline included) and returns it without
// the newline. It never buffers more than limit bytes of one line, and it reports a line
// that cannot fit as soon as the bytes already received show it, without waiting for more.
// io.EOF means the stream ended cleanly between lines.
func ReadLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		if r.Buffered() == 0 {
			if _, err := r.Peek(1); err != nil { // one read: what has arrived
				switch {
				case errors.Is(err, io.EOF) && len(line) == 0:
					return nil, io.EOF
				case errors.Is(err, io.EOF):
					return line, ErrTruncated
				default:
					return line, err
				}
			}
		}
		buf, _ := r.Peek(r.Buffered())
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			if len(line)+i+1 > limit {
				return nil, fmt.Errorf("%w (%d bytes)", ErrTooLarge, limit)
			}
			line = append(line, buf[:i]...)
			_, _ = r.Discard(i + 1)
			return line, nil
		}
		if len(line)+len(buf) >= limit { // not even room for the newline
			return nil, fmt.Errorf("%w (%d bytes)", ErrTooLarge, limit)
		}
		line = append(line, buf...)
		_, _ = r.Discard(len(buf))
	}
}

// DecodeRequest parses one request line. The error is a protocol error to send back.
func DecodeRequest(line []byte) (Request, *Error) {
	var req Request
	line = bytes.TrimRight(line, "\r")
	if len(bytes.TrimSpace(line)) == 0 {
		return req, Errorf(CodeBadRequest, "empty line; want one JSON object per line, e.g. {\"v\":1,\"id\":1,\"op\":\"status\"}")
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Request{ID: req.ID}, Errorf(CodeBadRequest, "not a request object: %v; want {\"v\":1,\"id\":N,\"op\":\"...\",\"args\":{...}}", err)
	}
	if dec.More() {
		return Request{ID: req.ID}, Errorf(CodeBadRequest, "more than one JSON value on the line; send one request per line")
	}
	if req.V != Version {
		return req, Errorf(CodeUnsupportedVersion, "protocol version %d: this agent speaks version %d (\"v\":%d)", req.V, Version, Version)
	}
	if !slices.Contains(Ops(), req.Op) {
		return req, Errorf(CodeUnknownOp, "op %q: want one of %v", req.Op, Ops())
	}
	return req, nil
}

// DecodeArgs parses a request's args into v (a pointer to the op's args struct). Absent or
// null args leave v as it is; unknown fields are errors.
func DecodeArgs(req Request, v any) *Error {
	a := bytes.TrimSpace(req.Args)
	if len(a) == 0 || bytes.Equal(a, []byte("null")) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(a))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf(CodeBadRequest, "%s: args: %v", req.Op, err)
	}
	return nil
}

// EncodeRequest writes a request line.
func EncodeRequest(w io.Writer, id uint64, op string, args any) error {
	req := Request{V: Version, ID: id, Op: op}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return fmt.Errorf("encode %s args: %w", op, err)
		}
		req.Args = b
	}
	return writeLine(w, req)
}

// Reply builds a successful response.
func Reply(id uint64, result any) (Response, error) {
	b, err := json.Marshal(result)
	if err != nil {
		return Response{}, fmt.Errorf("encode result: %w", err)
	}
	return Response{V: Version, ID: id, OK: true, Result: b}, nil
}

// ReplyError builds an error response.
func ReplyError(id uint64, e *Error) Response {
	return Response{V: Version, ID: id, Error: e}
}

// EncodeResponse writes a response line; a response longer than MaxMessage is replaced by
// an internal error, so a reader can always rely on the limit.
func EncodeResponse(w io.Writer, r Response) error {
	b, err := json.Marshal(r)
	if err == nil && len(b)+1 > MaxMessage {
		b, err = json.Marshal(ReplyError(r.ID, Errorf(CodeInternal, "response of %d bytes exceeds the %d-byte limit", len(b), MaxMessage)))
	}
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// DecodeResponse parses a response line. A well-formed error response is returned as err
// (*Error); the result of a successful one is decoded into result (when not nil).
func DecodeResponse(line []byte, result any) (Response, error) {
	var r Response
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("malformed response from the agent: %w", err)
	}
	if r.V != Version {
		return r, fmt.Errorf("response with protocol version %d; this client speaks %d", r.V, Version)
	}
	if !r.OK {
		if r.Error == nil {
			return r, fmt.Errorf("response neither ok nor an error")
		}
		return r, r.Error
	}
	if result != nil {
		if err := json.Unmarshal(r.Result, result); err != nil {
			return r, fmt.Errorf("malformed result from the agent: %w", err)
		}
	}
	return r, nil
}

func writeLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b)+1 > MaxMessage {
		return fmt.Errorf("request of %d bytes exceeds the %d-byte limit", len(b)+1, MaxMessage)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
