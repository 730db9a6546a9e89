package control

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	sdmtcp "github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

func TestRequestRoundTrip(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, EncodeRequest(&b, 7, OpCheckpoint, CheckpointArgs{Wait: true, Timeout: Duration(90 * time.Second)}))
	assert.Equal(t, `{"v":1,"id":7,"op":"checkpoint","args":{"wait":true,"timeout":90}}`+"\n", b.String())
	line, err := ReadLine(bufio.NewReader(&b), MaxMessage)
	require.NoError(t, err)
	req, perr := DecodeRequest(line)
	require.Nil(t, perr)
	assert.Equal(t, uint64(7), req.ID)
	var a CheckpointArgs
	require.Nil(t, DecodeArgs(req, &a))
	assert.Equal(t, CheckpointArgs{Wait: true, Timeout: Duration(90 * time.Second)}, a)
}

func TestResponseRoundTrip(t *testing.T) {
	var b bytes.Buffer
	r, err := Reply(3, IntervalResult{OldS: 3600, IntervalS: 600})
	require.NoError(t, err)
	require.NoError(t, EncodeResponse(&b, r))
	require.NoError(t, EncodeResponse(&b, ReplyError(4, Errorf(CodePolicy, "too short"))))
	rd := bufio.NewReader(&b)

	line, err := ReadLine(rd, MaxMessage)
	require.NoError(t, err)
	var ir IntervalResult
	resp, err := DecodeResponse(line, &ir)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), resp.ID)
	assert.Equal(t, IntervalResult{OldS: 3600, IntervalS: 600}, ir)

	line, err = ReadLine(rd, MaxMessage)
	require.NoError(t, err)
	_, err = DecodeResponse(line, nil)
	var pe *Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, CodePolicy, pe.Code)

	_, err = ReadLine(rd, MaxMessage)
	assert.ErrorIs(t, err, io.EOF)
}

func TestDecodeRequestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		code       Code
		msg        string
	}{
		{"empty", "", CodeBadRequest, "empty line"},
		{"blank", "   \r", CodeBadRequest, "empty line"},
		{"not json", "status", CodeBadRequest, "not a request object"},
		{"array", "[1,2]", CodeBadRequest, "not a request object"},
		{"unknown field", `{"v":1,"op":"status","x":1}`, CodeBadRequest, `unknown field "x"`},
		{"two values", `{"v":1,"op":"status"} {}`, CodeBadRequest, "more than one"},
		{"wrong id type", `{"v":1,"id":"a","op":"status"}`, CodeBadRequest, "not a request object"},
		{"no version", `{"op":"status"}`, CodeUnsupportedVersion, "version 0"},
		{"version 2", `{"v":2,"op":"status"}`, CodeUnsupportedVersion, "version 2"},
		{"unknown op", `{"v":1,"op":"explode"}`, CodeUnknownOp, `"explode"`},
		{"no op", `{"v":1}`, CodeUnknownOp, `op ""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, perr := DecodeRequest([]byte(tc.line))
			require.NotNil(t, perr)
			assert.Equal(t, tc.code, perr.Code)
			assert.Contains(t, perr.Message, tc.msg)
		})
	}
}

func TestDecodeArgs(t *testing.T) {
	for _, tc := range []struct {
		name, args string
		want       *Duration
		err        string
	}{
		{"seconds", `{"interval":900}`, ptr(Duration(900 * time.Second)), ""},
		{"string seconds", `{"interval":"900"}`, ptr(Duration(900 * time.Second)), ""},
		{"units", `{"interval":"1h30m"}`, ptr(Duration(90 * time.Minute)), ""},
		{"zero", `{"interval":0}`, ptr(Duration(0)), ""},
		{"absent", `{}`, nil, ""},
		{"null args", `null`, nil, ""},
		{"negative", `{"interval":-5}`, nil, "out of range"},
		{"bad unit", `{"interval":"5w"}`, nil, `unit 'w'`},
		{"bool", `{"interval":true}`, nil, "want seconds"},
		{"unknown arg", `{"interval":5,"extra":1}`, nil, `unknown field "extra"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a IntervalArgs
			perr := DecodeArgs(Request{Op: OpInterval, Args: []byte(tc.args)}, &a)
			if tc.err != "" {
				require.NotNil(t, perr)
				assert.Equal(t, CodeBadRequest, perr.Code)
				assert.Contains(t, perr.Message, tc.err)
				return
			}
			require.Nil(t, perr)
			assert.Equal(t, tc.want, a.Interval)
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"900", 900 * time.Second, false},
		{"90s", 90 * time.Second, false},
		{"30m", 30 * time.Minute, false},
		{"1h30m", 90 * time.Minute, false},
		{"2d", 48 * time.Hour, false},
		{" 60 ", time.Minute, false},
		{"", 0, true},
		{"m", 0, true},
		{"10", 10 * time.Second, false},
		{"10x", 0, true},
		{"1.5h", 0, true},
		{"99999999999d", 0, true},
		{"9999d", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			d, err := ParseDuration(tc.in)
			if tc.err {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.in)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, d)
		})
	}
}

func TestReadLineLimits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    string
		limit int
		want  []string
		err   error
	}{
		{"two lines", "a\nbb\n", 10, []string{"a", "bb"}, io.EOF},
		{"exactly the limit", "abcd\n", 5, []string{"abcd"}, io.EOF},
		{"one over", "abcde\n", 5, nil, ErrTooLarge},
		{"long without newline", strings.Repeat("x", 100), 10, nil, ErrTooLarge},
		{"truncated", "abc", 10, nil, ErrTruncated},
		{"empty stream", "", 10, nil, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A small reader buffer makes ReadLine go through several ErrBufferFull rounds.
			rd := bufio.NewReaderSize(strings.NewReader(tc.in), 16)
			var got []string
			var err error
			for {
				var l []byte
				l, err = ReadLine(rd, tc.limit)
				if err != nil {
					break
				}
				got = append(got, string(l))
			}
			assert.Equal(t, tc.want, got)
			assert.True(t, errors.Is(err, tc.err), "error %v, want %v", err, tc.err)
		})
	}
}

func TestReadLineLargeWithinLimit(t *testing.T) {
	big := strings.Repeat("y", MaxMessage-1)
	l, err := ReadLine(bufio.NewReaderSize(strings.NewReader(big+"\n"), 4096), MaxMessage)
	require.NoError(t, err)
	assert.Len(t, l, MaxMessage-1)
}

func TestEncodeResponseTooLarge(t *testing.T) {
	r, err := Reply(1, map[string]string{"x": strings.Repeat("z", MaxMessage)})
	require.NoError(t, err)
	var b bytes.Buffer
	require.NoError(t, EncodeResponse(&b, r))
	_, err = DecodeResponse(bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil)
	var pe *Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, CodeInternal, pe.Code)
	assert.Error(t, EncodeRequest(&b, 1, OpStatus, map[string]string{"x": strings.Repeat("z", MaxMessage)}))
}

func TestEnvSocketIsTheReadyKey(t *testing.T) {
	assert.Equal(t, EnvSocket, sdmtcp.EnvName(sdmtcp.KeyControlSocket), "the plugin passes every ready key on as SLURM_DMTCP_<KEY>")
}

// A line that cannot fit is reported from the bytes already received: the reader does not
// wait for more (the sender may send nothing more).
func TestReadLineTooLargeWithoutWaiting(t *testing.T) {
	for _, extra := range []int{0, 1, 10, 5000} {
		pr, pw := io.Pipe()
		go func() { _, _ = pw.Write([]byte(strings.Repeat("x", 1000+extra))) }() // then silence
		done := make(chan error, 1)
		go func() {
			_, err := ReadLine(bufio.NewReaderSize(pr, 64), 1000)
			done <- err
		}()
		select {
		case err := <-done:
			assert.ErrorIs(t, err, ErrTooLarge, "extra %d", extra)
		case <-time.After(2 * time.Second):
			t.Fatalf("extra %d: ReadLine waited for more input", extra)
		}
		pw.Close()
	}
}
