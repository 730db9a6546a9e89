// Package manifest defines the versioned MANIFEST.json that describes one
// checkpoint generation: which Slurm job and step it belongs to, why and when
// it was taken, and the size, sha256 and mode of every file in the
// generation folder.
//
// The format is documented in FORMAT.md next to this file. Parse is strict:
// an unknown format, a newer version, unknown fields, missing required fields
// or inconsistent values are errors that name the offending field. Verify
// re-reads every listed file of a generation folder and reports the first
// mismatch.
package manifest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	// FileName is the name of the manifest inside a generation folder.
	FileName = "MANIFEST.json"
	// Format is the value of the "format" field.
	Format = "slurm-dmtcp/manifest"
	// Version is the newest format version this package reads and the one
	// it writes.
	Version = 2
	// versionRanks is the first version with "ranks"; a manifest without ranks is still
	// written as version 1, byte for byte what older releases wrote and read.
	versionRanks = 2
)

// Reason says why a checkpoint was taken.
type Reason string

// The reasons a checkpoint can be taken.
const (
	ReasonPeriodic  Reason = "periodic"   // the agent's interval timer
	ReasonSignal    Reason = "signal"     // a signal sent to the job (e.g. scancel --signal)
	ReasonRequest   Reason = "request"    // an explicit user or admin request
	ReasonTimeLimit Reason = "time-limit" // the job is about to hit its time limit
)

// Valid reports whether r is one of the defined reasons.
func (r Reason) Valid() bool {
	switch r {
	case ReasonPeriodic, ReasonSignal, ReasonRequest, ReasonTimeLimit:
		return true
	}
	return false
}

// Array identifies the task of a Slurm job array.
type Array struct {
	JobID  uint32 `json:"job_id"`  // SLURM_ARRAY_JOB_ID
	TaskID uint32 `json:"task_id"` // SLURM_ARRAY_TASK_ID
}

// Meta is what the caller knows about a checkpoint; the generations package
// adds the generation number and the file list.
type Meta struct {
	JobID        uint32          // SLURM_JOB_ID, > 0
	StepID       string          // "batch", "extern", "0", ...
	Array        *Array          // nil unless the job is an array task
	RestartCount uint32          // SLURM_RESTART_COUNT (0 on first run)
	User         string          // user name that owns the job
	Node         string          // hostname the checkpoint was taken on
	Reason       Reason          // why the checkpoint was taken
	StartTime    time.Time       // when the checkpoint was requested
	EndTime      time.Time       // when DMTCP reported it complete
	DMTCPVersion string          // e.g. "3.0.0"
	NodeFacts    json.RawMessage // JSON object filled by another package; may be nil
	// Ranks, for a step across nodes, says which images belong to which task rank and where
	// that rank ran; nil for a checkpoint of one node (written as version 1).
	Ranks []Rank
}

// Rank is one task rank of a step across nodes: its images (paths of Files, under
// "rank-<Rank>/") and the node it ran on when they were written.
type Rank struct {
	Rank   int      `json:"rank"`
	Node   string   `json:"node"`
	Images []string `json:"images"`
}

// RankDir is the folder of a generation (and of the checkpoint folder) that holds the
// images of one task rank of a step across nodes.
func RankDir(rank int) string { return "rank-" + strconv.Itoa(rank) }

// Duration is EndTime - StartTime.
func (m Meta) Duration() time.Duration { return m.EndTime.Sub(m.StartTime) }

// File describes one regular file of a generation.
type File struct {
	Path   string      // slash-separated, relative to the generation folder
	Size   int64       // bytes
	SHA256 string      // lower-case hex
	Mode   fs.FileMode // permission bits only (0o777)
}

// Manifest is the parsed content of MANIFEST.json.
type Manifest struct {
	Meta
	Generation int    // >= 1
	Files      []File // sorted by Path, no duplicates
}

// Wire representation. Pointers detect missing fields.
type wireFile struct {
	Path   *string `json:"path"`
	Size   *int64  `json:"size"`
	SHA256 *string `json:"sha256"`
	Mode   *string `json:"mode"`
}

type wire struct {
	Format          *string         `json:"format"`
	Version         *int            `json:"version"`
	JobID           *uint32         `json:"job_id"`
	StepID          *string         `json:"step_id"`
	Array           *Array          `json:"array,omitempty"`
	RestartCount    *uint32         `json:"restart_count"`
	User            *string         `json:"user"`
	Node            *string         `json:"node"`
	Generation      *int            `json:"generation"`
	Reason          *string         `json:"reason"`
	StartTime       *time.Time      `json:"start_time"`
	EndTime         *time.Time      `json:"end_time"`
	DurationSeconds *float64        `json:"duration_seconds"`
	DMTCPVersion    *string         `json:"dmtcp_version"`
	NodeFacts       json.RawMessage `json:"node_facts,omitempty"`
	Ranks           []Rank          `json:"ranks,omitempty"`
	Files           []wireFile      `json:"files"`
}

// header is decoded leniently first so that a foreign or newer file gets a
// clear error instead of "unknown field".
type header struct {
	Format  *string          `json:"format"`
	Version *json.RawMessage `json:"version"`
}

// ErrUnsupported is wrapped by Parse errors for a manifest of another format
// or a newer version.
var ErrUnsupported = errors.New("unsupported manifest")

// Validate checks m for completeness and consistency.
func (m *Manifest) Validate() error {
	var missing []string
	if m.JobID == 0 {
		missing = append(missing, "job_id")
	}
	if m.StepID == "" {
		missing = append(missing, "step_id")
	}
	if m.User == "" {
		missing = append(missing, "user")
	}
	if m.Node == "" {
		missing = append(missing, "node")
	}
	if m.Reason == "" {
		missing = append(missing, "reason")
	}
	if m.StartTime.IsZero() {
		missing = append(missing, "start_time")
	}
	if m.EndTime.IsZero() {
		missing = append(missing, "end_time")
	}
	if m.DMTCPVersion == "" {
		missing = append(missing, "dmtcp_version")
	}
	if len(m.Files) == 0 {
		missing = append(missing, "files")
	}
	if len(missing) > 0 {
		return fmt.Errorf("manifest: missing or empty required field(s): %s", strings.Join(missing, ", "))
	}
	if m.Generation < 1 {
		return fmt.Errorf("manifest: generation %d: must be >= 1", m.Generation)
	}
	if !m.Reason.Valid() {
		return fmt.Errorf("manifest: reason %q: must be one of periodic, signal, request, time-limit", m.Reason)
	}
	for _, ts := range []struct {
		name string
		t    time.Time
	}{{"start_time", m.StartTime}, {"end_time", m.EndTime}} {
		if y := ts.t.Year(); y < 1970 || y > 9999 {
			return fmt.Errorf("manifest: %s %s: year out of range", ts.name, ts.t.Format(time.RFC3339))
		}
	}
	if m.EndTime.Before(m.StartTime) {
		return fmt.Errorf("manifest: end_time %s is before start_time %s",
			m.EndTime.Format(time.RFC3339Nano), m.StartTime.Format(time.RFC3339Nano))
	}
	if len(m.NodeFacts) > 0 {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(m.NodeFacts, &obj); err != nil {
			return fmt.Errorf("manifest: node_facts: must be a JSON object: %w", err)
		}
	}
	seen := make(map[string]bool, len(m.Files))
	for i, f := range m.Files {
		if err := checkRelPath(f.Path); err != nil {
			return fmt.Errorf("manifest: files[%d]: %w", i, err)
		}
		if seen[f.Path] {
			return fmt.Errorf("manifest: files[%d]: duplicate path %q", i, f.Path)
		}
		seen[f.Path] = true
		if f.Size < 0 {
			return fmt.Errorf("manifest: %s: negative size %d", f.Path, f.Size)
		}
		if !isSHA256(f.SHA256) {
			return fmt.Errorf("manifest: %s: sha256 %q: want 64 lower-case hex digits", f.Path, f.SHA256)
		}
		if f.Mode&^fs.ModePerm != 0 {
			return fmt.Errorf("manifest: %s: mode %#o: only permission bits allowed", f.Path, uint32(f.Mode))
		}
	}
	// Directories are implied by the file paths; a path may not be both a
	// file and the parent folder of another file.
	for p := range seen {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if seen[d] {
				return fmt.Errorf("manifest: %s: %q is listed as a file but is also a folder", p, d)
			}
		}
	}
	return validateRanks(m.Ranks, seen)
}

// validateRanks: each rank once, a node, at least one image, every image a listed file in
// that rank's folder and in no other rank.
func validateRanks(ranks []Rank, files map[string]bool) error {
	seenRank := map[int]bool{}
	owner := map[string]int{}
	for i, r := range ranks {
		switch {
		case r.Rank < 0:
			return fmt.Errorf("manifest: ranks[%d]: rank %d: must be >= 0", i, r.Rank)
		case seenRank[r.Rank]:
			return fmt.Errorf("manifest: ranks[%d]: rank %d listed twice", i, r.Rank)
		case r.Node == "":
			return fmt.Errorf("manifest: ranks[%d]: rank %d: missing node", i, r.Rank)
		case len(r.Images) == 0:
			return fmt.Errorf("manifest: ranks[%d]: rank %d: no image", i, r.Rank)
		}
		seenRank[r.Rank] = true
		for _, img := range r.Images {
			if !strings.HasPrefix(img, RankDir(r.Rank)+"/") {
				return fmt.Errorf("manifest: ranks[%d]: image %q is not in %s/", i, img, RankDir(r.Rank))
			}
			if !files[img] {
				return fmt.Errorf("manifest: ranks[%d]: image %q is not among the files", i, img)
			}
			if o, dup := owner[img]; dup {
				return fmt.Errorf("manifest: ranks[%d]: image %q already belongs to rank %d", i, img, o)
			}
			owner[img] = r.Rank
		}
	}
	return nil
}

func checkRelPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case strings.ContainsRune(p, 0) || strings.Contains(p, `\`):
		return fmt.Errorf("path %q: contains NUL or backslash", p)
	case path.IsAbs(p) || path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("path %q: must be a clean path relative to the generation folder", p)
	case p == FileName:
		return fmt.Errorf("path %q: the manifest cannot list itself", p)
	}
	return nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Marshal validates m and encodes it as indented JSON with the current
// format and version. Files are sorted by path.
func Marshal(m *Manifest) ([]byte, error) {
	if m == nil {
		return nil, errors.New("manifest: nil manifest")
	}
	c := *m
	c.Files = append([]File(nil), m.Files...)
	sort.Slice(c.Files, func(i, j int) bool { return c.Files[i].Path < c.Files[j].Path })
	if err := c.Validate(); err != nil {
		return nil, err
	}
	format, version := Format, 1
	if len(c.Ranks) > 0 {
		version = versionRanks
	}
	reason := string(c.Reason)
	dur := durationSeconds(c.StartTime, c.EndTime)
	w := wire{
		Format: &format, Version: &version,
		JobID: &c.JobID, StepID: &c.StepID, Array: c.Array, RestartCount: &c.RestartCount,
		User: &c.User, Node: &c.Node, Generation: &c.Generation, Reason: &reason,
		StartTime: &c.StartTime, EndTime: &c.EndTime, DurationSeconds: &dur,
		DMTCPVersion: &c.DMTCPVersion, Ranks: c.Ranks,
	}
	if len(c.NodeFacts) > 0 {
		var buf bytes.Buffer
		if err := json.Compact(&buf, c.NodeFacts); err != nil {
			return nil, fmt.Errorf("manifest: node_facts: %w", err)
		}
		if buf.String() != "null" {
			w.NodeFacts = buf.Bytes()
		}
	}
	w.Files = make([]wireFile, len(c.Files))
	for i := range c.Files {
		f := &c.Files[i]
		mode := fmt.Sprintf("%04o", uint32(f.Mode))
		w.Files[i] = wireFile{Path: &f.Path, Size: &f.Size, SHA256: &f.SHA256, Mode: &mode}
	}
	out, err := json.MarshalIndent(&w, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("manifest: encode: %w", err)
	}
	return append(out, '\n'), nil
}

// durationSeconds is rounded to microseconds so that it survives a JSON
// round trip unchanged.
func durationSeconds(start, end time.Time) float64 {
	return math.Round(end.Sub(start).Seconds()*1e6) / 1e6
}

// Parse decodes and strictly validates a manifest.
func Parse(data []byte) (*Manifest, error) {
	var h header
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("manifest: not a JSON object: %w", err)
	}
	if h.Format == nil {
		return nil, fmt.Errorf("manifest: missing field \"format\" (want %q)", Format)
	}
	if *h.Format != Format {
		return nil, fmt.Errorf("%w: format %q (want %q)", ErrUnsupported, *h.Format, Format)
	}
	if h.Version == nil {
		return nil, errors.New("manifest: missing field \"version\"")
	}
	version, err := strconv.Atoi(string(*h.Version))
	if err != nil {
		return nil, fmt.Errorf("manifest: version %s: not an integer", *h.Version)
	}
	if version > Version {
		return nil, fmt.Errorf("%w: %s version %d is newer than the newest supported version %d; upgrade slurm-dmtcp",
			ErrUnsupported, Format, version, Version)
	}
	if version < 1 {
		return nil, fmt.Errorf("manifest: version %d: must be >= 1", version)
	}

	var w wire
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("manifest: version %d: %w", version, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("manifest: trailing data after the JSON object")
	}

	var missing []string
	need := func(ok bool, name string) {
		if !ok {
			missing = append(missing, name)
		}
	}
	need(w.JobID != nil, "job_id")
	need(w.StepID != nil, "step_id")
	need(w.RestartCount != nil, "restart_count")
	need(w.User != nil, "user")
	need(w.Node != nil, "node")
	need(w.Generation != nil, "generation")
	need(w.Reason != nil, "reason")
	need(w.StartTime != nil, "start_time")
	need(w.EndTime != nil, "end_time")
	need(w.DurationSeconds != nil, "duration_seconds")
	need(w.DMTCPVersion != nil, "dmtcp_version")
	need(w.Files != nil, "files")
	if len(missing) > 0 {
		return nil, fmt.Errorf("manifest: missing required field(s): %s", strings.Join(missing, ", "))
	}
	if w.Ranks != nil && version < versionRanks {
		return nil, fmt.Errorf("manifest: version %d: unknown field \"ranks\" (new in version %d)", version, versionRanks)
	}

	m := &Manifest{
		Meta: Meta{
			JobID: *w.JobID, StepID: *w.StepID, Array: w.Array, RestartCount: *w.RestartCount,
			User: *w.User, Node: *w.Node, Reason: Reason(*w.Reason),
			StartTime: *w.StartTime, EndTime: *w.EndTime, DMTCPVersion: *w.DMTCPVersion,
			Ranks: w.Ranks,
		},
		Generation: *w.Generation,
		Files:      make([]File, len(w.Files)),
	}
	if len(w.NodeFacts) > 0 && string(w.NodeFacts) != "null" {
		m.NodeFacts = append(json.RawMessage(nil), w.NodeFacts...)
	}
	for i, wf := range w.Files {
		var fm []string
		if wf.Path == nil {
			fm = append(fm, "path")
		}
		if wf.Size == nil {
			fm = append(fm, "size")
		}
		if wf.SHA256 == nil {
			fm = append(fm, "sha256")
		}
		if wf.Mode == nil {
			fm = append(fm, "mode")
		}
		if len(fm) > 0 {
			return nil, fmt.Errorf("manifest: files[%d]: missing required field(s): %s", i, strings.Join(fm, ", "))
		}
		mode, err := parseMode(*wf.Mode)
		if err != nil {
			return nil, fmt.Errorf("manifest: files[%d] %q: %w", i, *wf.Path, err)
		}
		m.Files[i] = File{Path: *wf.Path, Size: *wf.Size, SHA256: *wf.SHA256, Mode: mode}
		if i > 0 && m.Files[i-1].Path > m.Files[i].Path {
			return nil, fmt.Errorf("manifest: files[%d] %q: files must be sorted by path", i, *wf.Path)
		}
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if want := durationSeconds(m.StartTime, m.EndTime); math.Abs(*w.DurationSeconds-want) > 1e-3 {
		return nil, fmt.Errorf("manifest: duration_seconds %v does not match end_time - start_time (%v)",
			*w.DurationSeconds, want)
	}
	return m, nil
}

func parseMode(s string) (fs.FileMode, error) {
	if len(s) != 4 || s[0] != '0' {
		return 0, fmt.Errorf("mode %q: want four octal digits such as \"0600\"", s)
	}
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v&^uint64(fs.ModePerm) != 0 {
		return 0, fmt.Errorf("mode %q: want four octal digits such as \"0600\"", s)
	}
	return fs.FileMode(v), nil
}

// TotalSize is the sum of the sizes of all listed files.
func (m *Manifest) TotalSize() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// hexSum formats a sha256 digest.
func hexSum(b []byte) string { return hex.EncodeToString(b) }
