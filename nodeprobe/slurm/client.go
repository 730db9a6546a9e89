package slurm

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// DefaultTimeout bounds one call of a Slurm client program when the caller has no reason
// for another (slurmctld answers in milliseconds when it is up).
const DefaultTimeout = 10 * time.Second

// ErrUnreachable is a Runner's error when slurmctld did not answer (down, restarting, cut
// off): the program said so, or did not end within its time-out.
var ErrUnreachable = errors.New("no answer from slurmctld")

// Runner runs a Slurm client program (scontrol, squeue) with args and returns its output.
// Fakes in tests are Runners too.
type Runner func(ctx context.Context, args ...string) ([]byte, error)

// Scontrol returns a Runner for the scontrol program at path ("scontrol": from PATH), each
// call bounded by timeout. The output is scontrol's stdout and stderr together.
func Scontrol(path string, timeout time.Duration) Runner {
	return command{path: path, timeout: timeout, combined: true}.run
}

// Squeue returns a Runner for the squeue program at path ("squeue": from PATH), each call
// bounded by timeout. The output is squeue's stdout alone (it is data, a job's Comment say);
// what it wrote on stderr is in the error.
func Squeue(path string, timeout time.Duration) Runner {
	return command{path: path, timeout: timeout}.run
}

// command runs one Slurm client program.
type command struct {
	path     string
	timeout  time.Duration
	combined bool // output is stdout and stderr; else stdout, stderr only in the error
}

func (c command) run(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.path, args...)
	var out []byte
	var err error
	var stderr strings.Builder
	if c.combined {
		out, err = cmd.CombinedOutput()
	} else {
		cmd.Stderr = &stderr
		out, err = cmd.Output()
	}
	if err == nil {
		return out, nil
	}
	said := strings.TrimSpace(stderr.String())
	if c.combined {
		said = strings.TrimSpace(string(out))
	}
	if ctx.Err() == context.DeadlineExceeded || strings.Contains(said, "Unable to contact slurm controller") {
		err = fmt.Errorf("%w within %s", ErrUnreachable, c.timeout)
	}
	if said == "" {
		return out, fmt.Errorf("%s %s: %w", c.path, strings.Join(args, " "), err)
	}
	return out, fmt.Errorf("%s %s: %w: %s", c.path, strings.Join(args, " "), err, said)
}

// Record is one record of scontrol's one-line output (show node -o, show job -o, show
// step -o): each key's value.
type Record map[string]string

// ParseRecord splits "Key=Value Key=Value ..." (line ends count as spaces). A value may
// hold spaces (OS=Linux 6.1 #1 SMP ..., Reason=Not responding [slurm@...], Command=/a b,
// Comment=...): a word that does not begin a key belongs to the value before it. A key
// begins with an upper-case letter, as all of scontrol's do, so that a word like
// --size=3 in Command= or gen=5 in a Comment stays in its value. The first of two equal
// keys wins: a key-like word in a value that comes later (Comment=, Command=, Reason=)
// does not hide scontrol's own field.
func ParseRecord(text string) Record {
	r := Record{}
	last := ""
	for _, w := range strings.Fields(text) {
		k, v, ok := strings.Cut(w, "=")
		if !ok || !isKey(k) {
			if last != "" {
				r[last] += " " + w
			}
			continue
		}
		if _, seen := r[k]; seen {
			last = "" // the words after it belong to no field read
			continue
		}
		r[k], last = v, k
	}
	return r
}

// isKey tells whether k can be one of scontrol's keys: NodeName, MCS_label, CPUs/Task,
// AllocNode:Sid, ReqB:S:C:T.
func isKey(k string) bool {
	return k != "" && k[0] >= 'A' && k[0] <= 'Z'
}

// Value is the value of key, "" when the record has none or scontrol printed "(null)".
func (r Record) Value(key string) string {
	if v := r[key]; v != "(null)" {
		return v
	}
	return ""
}

func firstN(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
