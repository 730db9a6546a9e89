package proto

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// KV is one key=value line of a ready message.
type KV struct {
	Key, Value string
}

var keyRE = regexp.MustCompile(`^[a-z_]+$`)

// MaxMessage is the longest message the plugin reads, in bytes (SDMTCP_PROTO_MAX), one of
// them its buffer's NUL.
const MaxMessage = 65536

// CutMark ends a value that WriteReady cut to keep the message within MaxMessage.
const CutMark = " [cut]"

// WriteReady writes a ready message with the given pairs, in order. When the message would
// be longer than the plugin reads, the longest of the values meant to be read by people
// (KeyRestoreNote, KeyMessage: notes on damaged generations, say) are cut, each ending in
// CutMark, until it fits; paths and numbers are never cut.
func WriteReady(w io.Writer, kvs []KV) error {
	size := len(ReadyHeader) + len(EndLine) + 2
	for _, kv := range kvs {
		if !keyRE.MatchString(kv.Key) {
			return fmt.Errorf("ready message: key %q: want lower-case letters and underscores", kv.Key)
		}
		if strings.ContainsAny(kv.Value, "\r\n") {
			return fmt.Errorf("ready message: value of %s holds a line break: %q", kv.Key, kv.Value)
		}
		size += len(kv.Key) + len(kv.Value) + 2
	}
	kvs = append([]KV(nil), kvs...)
	for size > MaxMessage-1 {
		longest := -1
		for i := range kvs {
			if cuttable(kvs[i].Key) && (longest < 0 || len(kvs[i].Value) > len(kvs[longest].Value)) {
				longest = i
			}
		}
		if longest < 0 || len(kvs[longest].Value) <= len(CutMark) {
			return fmt.Errorf("ready message: %d bytes, and the plugin reads %d", size, MaxMessage-1)
		}
		v := kvs[longest].Value
		keep := len(v) - (size - (MaxMessage - 1)) - len(CutMark)
		if keep < len(v)/2 {
			keep = len(v) / 2 // share the cut with the next longest value
		}
		kvs[longest].Value = v[:keep] + CutMark
		size -= len(v) - len(kvs[longest].Value)
	}
	var b strings.Builder
	b.WriteString(ReadyHeader + "\n")
	for _, kv := range kvs {
		fmt.Fprintf(&b, "%s=%s\n", kv.Key, kv.Value)
	}
	b.WriteString(EndLine + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// cuttable says whether WriteReady may cut the value of key: words for people only.
func cuttable(key string) bool {
	return key == KeyRestoreNote || key == KeyMessage
}

// WriteError writes an error message; line breaks in msg become spaces.
func WriteError(w io.Writer, msg string) error {
	msg = strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
	_, err := fmt.Fprintf(w, "%s\n%s=%s\n%s\n", ErrorHeader, KeyMessage, msg, EndLine)
	return err
}

// ReadMessage reads one message. It returns the pairs of a ready message, or an error that
// carries the agent's own words for an error message.
func ReadMessage(r io.Reader) (map[string]string, error) {
	sc := bufio.NewScanner(r)
	if !sc.Scan() {
		return nil, fmt.Errorf("ready message: empty")
	}
	head := sc.Text()
	if head != ReadyHeader && head != ErrorHeader {
		return nil, fmt.Errorf("ready message: header %q: want %q", head, ReadyHeader)
	}
	kv := map[string]string{}
	for sc.Scan() {
		line := sc.Text()
		if line == EndLine {
			if head == ErrorHeader {
				return nil, fmt.Errorf("agent: %s", kv[KeyMessage])
			}
			return kv, nil
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !keyRE.MatchString(k) {
			return nil, fmt.Errorf("ready message: malformed line %q", line)
		}
		kv[k] = v
	}
	return nil, fmt.Errorf("ready message: no %q line", EndLine)
}
