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

// WriteReady writes a ready message with the given pairs, in order.
func WriteReady(w io.Writer, kvs []KV) error {
	var b strings.Builder
	b.WriteString(ReadyHeader + "\n")
	for _, kv := range kvs {
		if !keyRE.MatchString(kv.Key) {
			return fmt.Errorf("ready message: key %q: want lower-case letters and underscores", kv.Key)
		}
		if strings.ContainsAny(kv.Value, "\r\n") {
			return fmt.Errorf("ready message: value of %s holds a line break: %q", kv.Key, kv.Value)
		}
		fmt.Fprintf(&b, "%s=%s\n", kv.Key, kv.Value)
	}
	b.WriteString(EndLine + "\n")
	_, err := io.WriteString(w, b.String())
	return err
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
