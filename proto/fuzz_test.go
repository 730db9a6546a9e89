package proto

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzReadMessage: the agent's ready or error message. The reader never panics, and a
// ready message it accepts says the same once written again.
func FuzzReadMessage(f *testing.F) {
	var ready, failed bytes.Buffer
	_ = WriteReady(&ready, []KV{{Key: KeyCoordHost, Value: "n1"}, {Key: KeyCoordPort, Value: "4000"}})
	_ = WriteError(&failed, "cannot start")
	for _, s := range []string{ready.String(), failed.String(), "", "end\n", "sdmtcp/1 ready\nnoequals\nend\n", "sdmtcp/9 ready\nend\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		kv, err := ReadMessage(bytes.NewReader(data))
		if err != nil {
			require.NotEmpty(t, err.Error())
			return
		}
		var kvs []KV
		for k, v := range kv {
			kvs = append(kvs, KV{Key: k, Value: v})
		}
		var b bytes.Buffer
		if WriteReady(&b, kvs) != nil {
			return // a pair that cannot be written (a newline in it): nothing to compare
		}
		again, err := ReadMessage(&b)
		require.NoError(t, err)
		require.Equal(t, kv, again)
	})
}
