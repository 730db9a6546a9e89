package control

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzDecodeRequest checks that the decoder never panics, that every rejection carries a
// known code and a message, and that whatever it accepts re-encodes to a request it accepts
// again with the same fields.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"id":1,"op":"status"}`,
		`{"v":1,"id":2,"op":"checkpoint","args":{"wait":true,"timeout":"10m"}}`,
		`{"v":1,"op":"interval","args":{"interval":"1h30m"}}`,
		`{"v":1,"op":"wait","args":{"ticket":3,"timeout":1.5}}`,
		`{"v":2,"op":"status"}`, `{}`, `null`, `[]`, "[dmtcp{v0<DRAIN!\x00", `{"v":1,"op":"ping"} x`,
	} {
		f.Add([]byte(s))
	}
	codes := map[Code]bool{CodeBadRequest: true, CodeUnsupportedVersion: true, CodeUnknownOp: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, perr := DecodeRequest(data)
		if perr != nil {
			require.True(t, codes[perr.Code], "code %q", perr.Code)
			require.NotEmpty(t, perr.Message)
			return
		}
		// Every op's args decode without panicking either.
		for _, v := range []any{&CheckpointArgs{}, &WaitArgs{}, &IntervalArgs{}} {
			_ = DecodeArgs(req, v)
		}
		var b bytes.Buffer
		require.NoError(t, EncodeRequest(&b, req.ID, req.Op, nil))
		line, err := ReadLine(bufio.NewReader(&b), MaxMessage)
		require.NoError(t, err)
		again, perr := DecodeRequest(line)
		require.Nil(t, perr)
		require.Equal(t, req.ID, again.ID)
		require.Equal(t, req.Op, again.Op)
	})
}
