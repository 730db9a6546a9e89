package proto

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadyRoundTrip(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteReady(&b, []KV{{KeyCoordHost, "node7"}, {KeyCoordPort, "40581"}, {KeyCkptDir, "/home/a b/c"}}))
	assert.Equal(t, "sdmtcp/1 ready\ncoord_host=node7\ncoord_port=40581\nckptdir=/home/a b/c\nend\n", b.String())
	kv, err := ReadMessage(&b)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"coord_host": "node7", "coord_port": "40581", "ckptdir": "/home/a b/c"}, kv)
}

// A message longer than the plugin reads has its longest values cut, the rest kept whole.
func TestReadyCutToFit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		notes []int // lengths of the long values
	}{
		{"one long note", []int{100 << 10}},
		{"two long notes", []int{40 << 10, 50 << 10}},
		{"just too long", []int{MaxMessage}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kvs := []KV{{KeyCoordHost, "node7"}, {KeyCoordPort, "40581"}}
			for i, n := range tc.notes {
				kvs = append(kvs, KV{[]string{KeyRestoreNote, KeyMessage}[i], strings.Repeat("x", n)})
			}
			var b bytes.Buffer
			require.NoError(t, WriteReady(&b, kvs))
			assert.LessOrEqual(t, b.Len(), MaxMessage-1, "the plugin keeps one byte for its NUL")
			kv, err := ReadMessage(&b)
			require.NoError(t, err)
			assert.Equal(t, "node7", kv[KeyCoordHost])
			assert.Equal(t, "40581", kv[KeyCoordPort])
			for i := range tc.notes {
				key := []string{KeyRestoreNote, KeyMessage}[i]
				assert.True(t, strings.HasSuffix(kv[key], CutMark), "%s cut with a mark", key)
			}
		})
	}
}

// Paths are never cut: a message of long paths only is refused, not shortened.
func TestReadyTooLongWithoutNotes(t *testing.T) {
	err := WriteReady(&bytes.Buffer{}, []KV{{KeyCkptDir, strings.Repeat("d", MaxMessage)}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the plugin reads 65535")
}

func TestReadyRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		kvs  []KV
		want string
	}{
		{"upper-case key", []KV{{"Port", "1"}}, `key "Port"`},
		{"newline in value", []KV{{"ckptdir", "/a\n/b"}}, "line break"},
		{"empty key", []KV{{"", "x"}}, `key ""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteReady(&bytes.Buffer{}, tc.kvs)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestReadMessage(t *testing.T) {
	for _, tc := range []struct {
		name, in, wantErr string
	}{
		{"error message", "sdmtcp/1 error\nmessage=dmtcp_launch not found\nend\n", "agent: dmtcp_launch not found"},
		{"other version", "sdmtcp/2 ready\nend\n", `header "sdmtcp/2 ready"`},
		{"empty", "", "empty"},
		{"no end", "sdmtcp/1 ready\ncoord_port=1\n", `no "end" line`},
		{"bad line", "sdmtcp/1 ready\nnonsense\nend\n", `malformed line "nonsense"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadMessage(bytes.NewBufferString(tc.in))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
	var b bytes.Buffer
	require.NoError(t, WriteError(&b, "two\nlines"))
	_, err := ReadMessage(&b)
	assert.EqualError(t, err, "agent: two lines")
}

// The C plugin has its own copy of these names in spank/proto.h: they must never drift.
func TestNamesMatchCHeader(t *testing.T) {
	src, err := os.ReadFile("../spank/proto.h")
	require.NoError(t, err)
	defs := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^#define (SDMTCP_\w+) ("[^"]*"|\S+)`).FindAllStringSubmatch(string(src), -1) {
		v := m[2]
		if s, err := strconv.Unquote(v); err == nil {
			v = s
		}
		defs[m[1]] = v
	}
	for c, goValue := range map[string]string{
		"SDMTCP_PROTO_READY":    ReadyHeader,
		"SDMTCP_PROTO_ERROR":    ErrorHeader,
		"SDMTCP_PROTO_END":      EndLine,
		"SDMTCP_PROTO_MAX":      strconv.Itoa(MaxMessage),
		"SDMTCP_AGENT_READY_FD": strconv.Itoa(ReadyFD),
		"SDMTCP_ENV_PREFIX":     EnvPrefix,
		"SDMTCP_ENV_ARGV0":      EnvArgv0,
		"SDMTCP_ENV_PREFIX_DIR": EnvDMTCPPrefix,
		"SDMTCP_ENV_ERROR":      EnvError,
		"SDMTCP_ENV_COORD_HOST": EnvCoordHost,
		"SDMTCP_ENV_COORD_PORT": EnvCoordPort,
	} {
		assert.Equal(t, goValue, defs[c], "spank/proto.h %s", c)
	}
	assert.Equal(t, EnvCoordPort, EnvName(KeyCoordPort), "the plugin derives variable names from keys")
	assert.Equal(t, EnvCoordHost, EnvName(KeyCoordHost))
}
