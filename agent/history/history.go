// Package history is a step's checkpoint timeline: the agent appends one JSON line to
// <stepdir>/history for each committed generation, each restore and each requeue it makes,
// and Timeline reads it back, merged with the manifests of the generations still on disk (so
// that a step folder written by a release without the file, or a line lost to a crash between
// the commit and the append, still shows its generations).
//
// The file is append-only, one event a line, each line written with a single write(2) and
// fsynced: a reader sees whole lines, except perhaps a last line cut by a crash, which is
// skipped. Readers ignore fields they do not know, so later releases may add fields.
package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/slurm-dmtcp/slurm-dmtcp/proto/manifest"
)

// FileName is the history file in a step's folder.
const FileName = "history"

// Kinds of events.
const (
	KindCheckpoint = "checkpoint" // a generation was committed and verified
	KindRestore    = "restore"    // the step's tasks restore a generation
	KindRequeue    = "requeue"    // the agent requeued the job (Why says why)
)

// Why the agent requeued a job (Event.Why of a KindRequeue event).
const (
	WhyRecovery  = "recovery"  // the computation died while it ran: requeued to restore
	WhyContinue  = "continue"  // --dmtcp-continue: the time limit comes, go on in another run
	WhyPlacement = "placement" // this node cannot restore the checkpoint: requeued to its class
)

// Event is one line of the history file.
type Event struct {
	Time       time.Time `json:"time"`
	Kind       string    `json:"event"`
	Step       string    `json:"step,omitempty"`
	Restart    int       `json:"restart"`              // SLURM_RESTART_COUNT of the run
	Generation int       `json:"generation,omitempty"` // committed, restored, or to restore
	// Reason of a checkpoint: periodic, signal, request, time-limit (the manifest's).
	Reason    string  `json:"reason,omitempty"`
	Bytes     int64   `json:"bytes,omitempty"`
	DurationS float64 `json:"duration_s,omitempty"` // DMTCP's part of a checkpoint
	Node      string  `json:"node,omitempty"`
	Attempt   int     `json:"attempt,omitempty"` // of a restore: 1 first, more when retried
	Why       string  `json:"why,omitempty"`     // of a requeue: WhyRecovery, WhyContinue, WhyPlacement
	Detail    string  `json:"detail,omitempty"`  // in words
	// FromManifest: not in the history file, read from a generation's manifest.
	FromManifest bool `json:"from_manifest,omitempty"`
}

// maxLine bounds one line: one write of it stays whole, and a reader never reads a huge line.
const maxLine = 4096

// Append adds e to stepDir's history file (created 0600; a symbolic link is refused), in one
// write, then fsyncs it.
func Append(stepDir string, e Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("history: encode %s event: %w", e.Kind, err)
	}
	if len(b)+1 > maxLine {
		e.Detail = e.Detail[:max(0, len(e.Detail)-(len(b)+1-maxLine))]
		if b, err = json.Marshal(e); err != nil {
			return fmt.Errorf("history: encode %s event: %w", e.Kind, err)
		}
	}
	p := filepath.Join(stepDir, FileName)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("history: open %s: %w", p, err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("history: write %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("history: fsync %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("history: close %s: %w", p, err)
	}
	return nil
}

// Read returns the events of stepDir's history file in file order (none when there is no
// file) and how many lines did not parse (a line cut by a crash).
func Read(stepDir string) ([]Event, int, error) {
	p := filepath.Join(stepDir, FileName)
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("history: open %s: %w", p, err)
	}
	defer f.Close()
	var evs []Event
	bad := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, maxLine), 16*maxLine)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil || e.Kind == "" || e.Time.IsZero() {
			bad++
			continue
		}
		evs = append(evs, e)
	}
	if err := sc.Err(); err != nil {
		return evs, bad, fmt.Errorf("history: read %s: %w", p, err)
	}
	return evs, bad, nil
}

var genDir = regexp.MustCompile(`^gen-([0-9]{6,})$`)

// Timeline is a step's history: the file's events plus a checkpoint event for each
// generation on disk that the file does not name, oldest first.
type Timeline struct {
	Step    string  `json:"step"`
	Dir     string  `json:"dir"`
	Events  []Event `json:"events"`
	Skipped int     `json:"skipped_lines,omitempty"` // lines of the file that did not parse
	// Damaged lists generation folders whose manifest cannot be read.
	Damaged []string `json:"damaged,omitempty"`
}

// ReadTimeline reads the timeline of the step in stepDir (named step).
func ReadTimeline(stepDir, step string) (Timeline, error) {
	t := Timeline{Step: step, Dir: stepDir, Events: []Event{}}
	evs, bad, err := Read(stepDir)
	if err != nil {
		return t, err
	}
	t.Skipped = bad
	known := map[int]bool{}
	for _, e := range evs {
		if e.Kind == KindCheckpoint {
			known[e.Generation] = true
		}
	}
	entries, err := os.ReadDir(stepDir)
	if err != nil {
		return t, fmt.Errorf("history: read %s: %w", stepDir, err)
	}
	for _, de := range entries {
		m := genDir.FindStringSubmatch(de.Name())
		if m == nil || !de.IsDir() {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		if known[n] {
			continue
		}
		mf, err := manifest.Read(filepath.Join(stepDir, de.Name()))
		if err != nil {
			t.Damaged = append(t.Damaged, de.Name())
			continue
		}
		evs = append(evs, Event{Time: mf.EndTime, Kind: KindCheckpoint, Step: mf.StepID, Restart: int(mf.RestartCount),
			Generation: n, Reason: string(mf.Reason), Bytes: mf.TotalSize(), DurationS: mf.Duration().Seconds(),
			Node: mf.Node, FromManifest: true})
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
	for i := range evs {
		if evs[i].Step == "" {
			evs[i].Step = step
		}
	}
	t.Events = append(t.Events, evs...)
	return t, nil
}

// JobTimelines reads the timeline of every step folder under jobDir (batch, step-N), batch
// first, then steps by number.
func JobTimelines(jobDir string) ([]Timeline, error) {
	entries, err := os.ReadDir(jobDir)
	if err != nil {
		return nil, fmt.Errorf("history: read job folder %s: %w", jobDir, err)
	}
	var steps []string
	for _, de := range entries {
		if de.IsDir() && (de.Name() == "batch" || stepDir.MatchString(de.Name())) {
			steps = append(steps, de.Name())
		}
	}
	sort.Slice(steps, func(i, j int) bool { return stepOrder(steps[i]) < stepOrder(steps[j]) })
	var out []Timeline
	for _, s := range steps {
		t, err := ReadTimeline(filepath.Join(jobDir, s), s)
		if err != nil {
			return out, err
		}
		out = append(out, t)
	}
	return out, nil
}

var stepDir = regexp.MustCompile(`^step-([0-9]+)$`)

func stepOrder(name string) int {
	if m := stepDir.FindStringSubmatch(name); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n + 1
	}
	return 0 // batch
}
