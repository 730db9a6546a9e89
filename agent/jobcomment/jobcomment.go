// Package jobcomment shows a job's newest checkpoint in Slurm's own tools: the agent sets the
// job's Comment (which a user may set on their own job with scontrol update; AdminComment
// needs an operator) to one compact line,
//
//	slurm-dmtcp: gen=5 at=2026-12-07T12:00:00Z size=48MiB
//	slurm-dmtcp: gen=5 at=2026-12-07T12:00:00Z size=48MiB requeue=continue
//	slurm-dmtcp: step=0 gen=2 at=2026-12-07T12:00:00Z size=3.1MiB
//
// so that squeue -o %k, scontrol show job and (with AccountingStoreFlags=job_comment) sacct
// show it. A Comment that is not empty and not ours (it does not begin with "slurm-dmtcp:")
// is the user's and is never replaced. Publishing never blocks the caller: a Publisher runs
// squeue and scontrol (Runners of nodeprobe/slurm, the one Slurm client) in its own
// goroutine, each call bounded, and logs a warning when it fails.
package jobcomment

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
)

// Prefix begins every Comment the agent writes.
const Prefix = "slurm-dmtcp:"

// State is what the Comment shows.
type State struct {
	Step       string    // "" or "batch": not shown; else step=S
	Generation int       // newest committed generation; 0: none yet
	At         time.Time // when it was written
	Bytes      int64
	// Requeue is why the agent requeued the job last (history.Why*), "" when it did not since
	// the newest generation.
	Requeue string
}

// Format is the Comment of s.
func Format(s State) string {
	var b strings.Builder
	b.WriteString(Prefix)
	if s.Step != "" && s.Step != "batch" {
		fmt.Fprintf(&b, " step=%s", s.Step)
	}
	if s.Generation > 0 {
		fmt.Fprintf(&b, " gen=%d at=%s size=%s", s.Generation, s.At.UTC().Format(time.RFC3339), Size(s.Bytes))
	} else {
		b.WriteString(" gen=none")
	}
	if s.Requeue != "" {
		fmt.Fprintf(&b, " requeue=%s", s.Requeue)
	}
	return b.String()
}

// Parse reads a Comment written by Format; ok is false for any other text.
func Parse(c string) (s State, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(c), Prefix)
	if !found {
		return State{}, false
	}
	for _, f := range strings.Fields(rest) {
		k, v, found := strings.Cut(f, "=")
		if !found {
			return State{}, false
		}
		var err error
		switch k {
		case "step":
			s.Step = v
		case "gen":
			if v != "none" {
				s.Generation, err = strconv.Atoi(v)
			}
		case "at":
			s.At, err = time.Parse(time.RFC3339, v)
		case "size":
			s.Bytes, err = ParseSize(v)
		case "requeue":
			s.Requeue = v
		default: // a later release's field: kept unread
		}
		if err != nil {
			return State{}, false
		}
	}
	return s, true
}

// Ours tells whether the agent may write over Comment c: it is empty or one of ours.
func Ours(c string) bool {
	c = strings.TrimSpace(c)
	return c == "" || c == "(null)" || strings.HasPrefix(c, Prefix)
}

var units = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}

// Size is n bytes in the largest binary unit that keeps the figure at least 1: 48MiB, 3.1GiB
// (one decimal below 10), 512B.
func Size(n int64) string {
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%dB", n)
	}
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 1, 64) + units[i]
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + units[i]
}

// ParseSize reads what Size writes (to within its rounding).
func ParseSize(s string) (int64, error) {
	for i := len(units) - 1; i >= 0; i-- {
		if num, ok := strings.CutSuffix(s, units[i]); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("size %q: want a number and a unit (48MiB)", s)
			}
			for range i {
				v *= 1024
			}
			return int64(v), nil
		}
	}
	return 0, fmt.Errorf("size %q: no unit (B, KiB, MiB, GiB, ...)", s)
}

// Publisher sets one job's Comment in the background, the newest State winning.
type Publisher struct {
	JobID    string
	Squeue   slurm.Runner // reads the Comment: squeue -h -j ID -o %k (slurm.Squeue)
	Scontrol slurm.Runner // sets it: scontrol update JobId=ID Comment=... (slurm.Scontrol)
	Timeout  time.Duration
	Log      *logrus.Entry

	once   sync.Once
	mu     sync.Mutex
	next   *State
	kick   chan struct{}
	idle   *sync.Cond
	busy   bool
	warned bool // the user's own Comment was found (logged once)
	last   string
}

func (p *Publisher) start() {
	p.once.Do(func() {
		p.kick = make(chan struct{}, 1)
		p.idle = sync.NewCond(&p.mu)
		go p.loop()
	})
}

// Set publishes s soon; it never blocks. A State not yet published is replaced by s.
func (p *Publisher) Set(s State) {
	if p == nil {
		return
	}
	p.start()
	p.mu.Lock()
	p.next = &s
	p.busy = true
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Flush waits, at most max, until what was Set is published (or failed).
func (p *Publisher) Flush(max time.Duration) {
	if p == nil {
		return
	}
	p.start()
	done := make(chan struct{})
	go func() {
		p.mu.Lock()
		for p.busy {
			p.idle.Wait()
		}
		p.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(max):
	}
}

func (p *Publisher) loop() {
	for range p.kick {
		for {
			p.mu.Lock()
			s := p.next
			p.next = nil
			if s == nil {
				p.busy = false
				p.idle.Broadcast()
				p.mu.Unlock()
				break
			}
			p.mu.Unlock()
			p.publish(*s)
		}
	}
}

func (p *Publisher) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return 10 * time.Second
}

// publish writes s unless the job's Comment is the user's own.
func (p *Publisher) publish(s State) {
	text := Format(s)
	if text == p.last {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout())
	defer cancel()
	out, err := p.Squeue(ctx, "--noheader", "--jobs", p.JobID, "--format", "%k")
	if err != nil {
		p.Log.WithError(err).Warn("job comment not updated: cannot read it")
		return
	}
	if cur := strings.TrimRight(string(out), "\n"); !Ours(cur) {
		if !p.warned {
			p.warned = true
			p.Log.WithField("comment", cur).Info("the job's Comment is the user's own: the checkpoint is not shown there")
		}
		return
	}
	if _, err := p.Scontrol(ctx, "update", "JobId="+p.JobID, "Comment="+text); err != nil {
		p.Log.WithError(err).Warn("job comment not updated")
		return
	}
	p.last = text
	p.Log.WithField("comment", text).Debug("job comment updated")
}
