package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/cache"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/facts"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// collect reads this node's facts and reports notes on stderr.
func collect(c common, e env) (facts.Facts, error) {
	f, err := facts.Collect(c.factOptions(e.now))
	if err != nil {
		return facts.Facts{}, err
	}
	for _, n := range f.Notes {
		fmt.Fprintf(e.stderr, "note: %s\n", n)
	}
	return f, nil
}

// openForWrite opens the cache, moving a corrupt one aside.
func openForWrite(c common, e env) (*cache.Cache, error) {
	db, movedTo, err := cache.OpenOrRecover(c.db, e.now())
	if err != nil {
		return nil, err
	}
	if movedTo != "" {
		fmt.Fprintf(e.stderr, "warning: cache %s was corrupt; moved it to %s and started a fresh one\n", c.db, movedTo)
	}
	return db, nil
}

type probeResult struct {
	Class   string      `json:"class"`
	Changed bool        `json:"changed"`
	DB      string      `json:"db"`
	Facts   facts.Facts `json:"facts"`
}

func cmdProbe(args []string, c common, e env) error {
	fs := newFlagSet("probe")
	c.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("probe", pos, 0, "probe [--json]"); err != nil {
		return err
	}
	f, err := collect(c, e)
	if err != nil {
		return err
	}
	db, err := openForWrite(c, e)
	if err != nil {
		return err
	}
	defer db.Close()
	changed, err := db.Record(f, e.now())
	if err != nil {
		return err
	}
	class := facts.Class(f)
	if *asJSON {
		return writeJSON(e.stdout, probeResult{Class: class, Changed: changed, DB: c.db, Facts: f})
	}
	state := "unchanged"
	if changed {
		state = "changed"
	}
	fmt.Fprintf(e.stdout, "class %s %s\n", class, state)
	return nil
}

func cmdShow(args []string, c common, e env) error {
	fs := newFlagSet("show")
	c.register(fs)
	asJSON := fs.Bool("json", false, "print the facts as JSON (usable as a diff input)")
	history := fs.Int("history", 0, "print the last `N` recorded fact sets")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("show", pos, 0, "show [--json] [--history N]"); err != nil {
		return err
	}
	if *history < 0 {
		return usagef("show: --history %d: want a count of 1 or more", *history)
	}
	if _, err := os.Stat(c.db); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no facts recorded in %s yet: run 'slurm-dmtcp-nodeprobe probe' first", c.db)
	}
	db, err := cache.Open(c.db)
	if err != nil {
		if errors.Is(err, cache.ErrCorrupt) {
			return fmt.Errorf("%w (the next 'probe' moves it aside and starts afresh)", err)
		}
		return err
	}
	defer db.Close()
	if *history > 0 {
		hist, err := db.History(*history)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(e.stdout, hist)
		}
		for _, h := range hist {
			fmt.Fprintf(e.stdout, "%s  first %s  last %s  probes %d  kernel %s  glibc %s  dmtcp %s\n",
				h.Class, h.FirstSeen.Format(time.RFC3339), h.LastSeen.Format(time.RFC3339), h.Probes,
				h.Facts.KernelRelease, orNone(h.Facts.GlibcVersion), orNone(h.Facts.DMTCPVersion))
		}
		return nil
	}
	latest, err := db.Latest()
	if err != nil {
		if errors.Is(err, cache.ErrEmpty) {
			return fmt.Errorf("no facts recorded in %s yet: run 'slurm-dmtcp-nodeprobe probe' first", c.db)
		}
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, latest.Facts)
	}
	printFacts(e.stdout, latest)
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func printFacts(w io.Writer, en cache.Entry) {
	f := en.Facts
	level := "-"
	if f.X86Level > 0 {
		level = fmt.Sprintf("v%d", f.X86Level)
	}
	rows := [][2]string{
		{"class", en.Class},
		{"hostname", f.Hostname},
		{"first seen", en.FirstSeen.Format(time.RFC3339)},
		{"last seen", fmt.Sprintf("%s (%d probes)", en.LastSeen.Format(time.RFC3339), en.Probes)},
		{"arch", f.Arch},
		{"cpu", fmt.Sprintf("%s, %s (family %d model %d stepping %d), %d cpus", f.CPUVendor, f.CPUModelName, f.CPUFamily, f.CPUModel, f.CPUStepping, f.CPUCount)},
		{"x86-64 level", level},
		{"feature families", orNone(strings.Join(f.FeatureFamilies, " "))},
		{"isa features", strings.Join(f.ISAFeatures, " ")},
		{"kernel", f.KernelRelease},
		{"vdso / vvar", fmt.Sprintf("%d / %d bytes", f.VDSOSize, f.VVARSize)},
		{"page size", fmt.Sprint(f.PageSize)},
		{"glibc", orNone(f.GlibcVersion)},
		{"dmtcp", orNone(f.DMTCPVersion)},
		{"os", strings.TrimSpace(f.OSID + " " + f.OSVersionID)},
		{"aslr, pid_max", fmt.Sprintf("randomize_va_space=%d pid_max=%d", f.RandomizeVASpace, f.PIDMax)},
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%-17s %s\n", r[0]+":", r[1])
	}
	for _, n := range f.Notes {
		fmt.Fprintf(w, "%-17s %s\n", "note:", n)
	}
}

// loadFacts reads a facts file, a manifest, or this node's facts for "-".
func loadFacts(arg string, c common, e env) (facts.Facts, error) {
	if arg == "-" {
		return collect(c, e)
	}
	return facts.ReadFile(arg)
}

type diffReport struct {
	A           string             `json:"a"`
	B           string             `json:"b"`
	ClassA      string             `json:"class_a"`
	ClassB      string             `json:"class_b"`
	Compatible  bool               `json:"compatible"`
	Differences []facts.Difference `json:"differences"`
}

func cmdDiff(args []string, c common, e env) error {
	fs := newFlagSet("diff")
	c.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("diff", pos, 2, `diff FILE_A FILE_B, each a facts JSON file, a manifest with "node_facts", or "-" for this node`); err != nil {
		return err
	}
	if pos[0] == "-" && pos[1] == "-" {
		return usagef(`diff: at most one of FILE_A and FILE_B may be "-" (this node)`)
	}
	a, err := loadFacts(pos[0], c, e)
	if err != nil {
		return err
	}
	b, err := loadFacts(pos[1], c, e)
	if err != nil {
		return err
	}
	ok, ds := facts.Compatible(a, b)
	rep := diffReport{A: pos[0], B: pos[1], ClassA: facts.Class(a), ClassB: facts.Class(b), Compatible: ok, Differences: ds}
	if rep.Differences == nil {
		rep.Differences = []facts.Difference{}
	}
	if *asJSON {
		if err := writeJSON(e.stdout, rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "A %s (%s, class %s)\nB %s (%s, class %s)\n", pos[0], a.Hostname, rep.ClassA, pos[1], b.Hostname, rep.ClassB)
		if len(ds) == 0 {
			fmt.Fprintln(e.stdout, "no differences")
		}
		printDifferences(e.stdout, ds, "A", "B", true)
	}
	if !ok {
		return exitError{ExitIncompatible}
	}
	return nil
}

func printDifferences(w io.Writer, ds []facts.Difference, nameA, nameB string, all bool) {
	for _, d := range ds {
		if d.Severity == facts.Info && !all {
			continue
		}
		fmt.Fprintf(w, "%-8s %s: %s (%s) vs %s (%s)\n         %s\n", d.Severity, d.Fact, orNone(d.A), nameA, orNone(d.B), nameB, d.Why)
	}
}

// readManifest reads the "node_facts" object of a checkpoint manifest.
func readManifest(path string) (facts.Facts, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return facts.Facts{}, fmt.Errorf("read manifest: %w", err)
	}
	var m struct {
		NodeFacts *json.RawMessage `json:"node_facts"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return facts.Facts{}, fmt.Errorf("manifest %s: not JSON: %w", path, err)
	}
	if m.NodeFacts == nil {
		return facts.Facts{}, fmt.Errorf(`manifest %s: no top-level "node_facts" object (the facts of the node the checkpoint was taken on)`, path)
	}
	f, err := facts.Decode(strings.NewReader(string(*m.NodeFacts)))
	if err != nil {
		return facts.Facts{}, fmt.Errorf("manifest %s: node_facts: %w", path, err)
	}
	return f, nil
}

type checkReport struct {
	Manifest        string             `json:"manifest"`
	Compatible      bool               `json:"compatible"`
	CheckpointClass string             `json:"checkpoint_class"`
	NodeClass       string             `json:"node_class"`
	Differences     []facts.Difference `json:"differences"`
}

func cmdCheck(args []string, c common, e env) error {
	fs := newFlagSet("check")
	c.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	all := fs.Bool("all", false, "also list differences that do not matter for restore")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("check", pos, 1, `check MANIFEST, a JSON file with a top-level "node_facts" object`); err != nil {
		return err
	}
	ckpt, err := readManifest(pos[0])
	if err != nil {
		return err
	}
	node, err := collect(c, e)
	if err != nil {
		return err
	}
	ok, ds := facts.Compatible(ckpt, node)
	if *asJSON {
		shown := []facts.Difference{}
		for _, d := range ds {
			if *all || d.Severity != facts.Info {
				shown = append(shown, d)
			}
		}
		if err := writeJSON(e.stdout, checkReport{Manifest: pos[0], Compatible: ok, CheckpointClass: facts.Class(ckpt), NodeClass: facts.Class(node), Differences: shown}); err != nil {
			return err
		}
	} else {
		blocking := 0
		for _, d := range ds {
			if d.Severity == facts.Blocking {
				blocking++
			}
		}
		if ok {
			fmt.Fprintf(e.stdout, "compatible: the checkpoint taken on %s (class %s) can be restored on %s (class %s)\n", orNone(ckpt.Hostname), facts.Class(ckpt), orNone(node.Hostname), facts.Class(node))
		} else {
			fmt.Fprintf(e.stdout, "incompatible: %d blocking difference(s) between the checkpoint node %s (class %s) and this node %s (class %s)\n", blocking, orNone(ckpt.Hostname), facts.Class(ckpt), orNone(node.Hostname), facts.Class(node))
		}
		printDifferences(e.stdout, ds, "checkpoint", "node", *all)
	}
	if !ok {
		return exitError{ExitIncompatible}
	}
	return nil
}
