package cli

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/facts"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/mapsvg"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
)

// scontrolTimeout bounds one scontrol call (slurmctld answers in milliseconds when up).
const scontrolTimeout = 30 * time.Second

func (e env) runner(path string) slurm.Runner {
	if e.scontrol != nil {
		return e.scontrol(path)
	}
	return slurm.Scontrol(path, scontrolTimeout)
}

// nodeName is --node, else this host's short name (what slurmd uses by default).
func (e env) nodeName(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	h := os.Hostname
	if e.hostname != nil {
		h = e.hostname
	}
	name, err := h()
	if err != nil {
		return "", fmt.Errorf("this node's name: %w (give it with --node)", err)
	}
	short, _, _ := strings.Cut(name, ".")
	return short, nil
}

type publishResult struct {
	Class string `json:"class"`
	slurm.Published
}

// probeAndPublish collects and records the facts, then publishes their class on node.
func probeAndPublish(ctx context.Context, c common, e env, node string) (publishResult, error) {
	f, err := collect(c, e)
	if err != nil {
		return publishResult{}, err
	}
	db, err := openForWrite(c, e)
	if err != nil {
		return publishResult{}, err
	}
	defer db.Close()
	if _, err := db.Record(f, e.now()); err != nil {
		return publishResult{}, err
	}
	class := facts.Class(f)
	p, err := slurm.Publish(ctx, e.runner(c.scontrol), node, class)
	if err != nil {
		return publishResult{}, err
	}
	return publishResult{Class: class, Published: p}, nil
}

func cmdPublish(ctx context.Context, args []string, c common, e env) error {
	fs := newFlagSet("publish")
	c.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	nodeFlag := fs.String("node", "", "Slurm NodeName of this node (default: the short host name)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("publish", pos, 0, "publish [--json] [--node NAME]"); err != nil {
		return err
	}
	node, err := e.nodeName(*nodeFlag)
	if err != nil {
		return err
	}
	r, err := probeAndPublish(ctx, c, e, node)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, r)
	}
	switch {
	case !r.Changed:
		fmt.Fprintf(e.stdout, "node %s: class %s already published as feature %s\n", r.Node, r.Class, r.Feature)
	case len(r.Removed) > 0:
		fmt.Fprintf(e.stdout, "node %s: class %s published as feature %s (replaced %s)\n", r.Node, r.Class, r.Feature, strings.Join(r.Removed, ","))
	default:
		fmt.Fprintf(e.stdout, "node %s: class %s published as feature %s\n", r.Node, r.Class, r.Feature)
	}
	return nil
}

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func cmdMap(ctx context.Context, args []string, c common, e env) error {
	fs := newFlagSet("map")
	c.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	asSVG := fs.Bool("svg", false, "draw the classes as an SVG picture")
	var factFiles multiFlag
	fs.Var(&factFiles, "facts", "facts JSON `FILE` of one class (show --json on a node of it); repeatable")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("map", pos, 0, "map [--json | --svg] [--facts FILE]..."); err != nil {
		return err
	}
	if *asJSON && *asSVG {
		return usagef("map: --json and --svg exclude each other")
	}
	byClass := map[string]facts.Facts{}
	for _, p := range factFiles {
		f, err := facts.ReadFile(p)
		if err != nil {
			return fmt.Errorf("map --facts: %w", err)
		}
		byClass[facts.Class(f)] = f
	}
	nodes, err := slurm.ShowNodes(ctx, e.runner(c.scontrol), "")
	if err != nil {
		return fmt.Errorf("map: %w", err)
	}
	var compatible func(a, b string) bool
	if len(byClass) > 0 {
		compatible = func(a, b string) bool {
			fa, okA := byClass[a]
			fb, okB := byClass[b]
			if !okA || !okB {
				return false
			}
			ok, _ := facts.Compatible(fa, fb)
			return ok
		}
	}
	m := slurm.BuildMap(nodes, compatible)
	if *asJSON {
		return writeJSON(e.stdout, m)
	}
	if *asSVG {
		known := map[string]bool{}
		for c := range byClass {
			known[c] = true
		}
		return mapsvg.Write(e.stdout, mapsvg.Picture{Map: m, Pairs: mapsvg.PairsOf(m, byClass), Known: known})
	}
	fmt.Fprintf(e.stdout, "%d node(s), %d class(es)\n", len(m.Nodes), len(m.Group))
	for _, g := range m.Group {
		fmt.Fprintf(e.stdout, "class %s (feature %s): %d node(s): %s\n", g.Class, g.Feature, len(g.Nodes), strings.Join(g.Nodes, " "))
		if len(g.Nodes) > 1 {
			fmt.Fprintf(e.stdout, "  checkpoints move freely between these nodes\n")
		} else {
			fmt.Fprintf(e.stdout, "  checkpoints restore only on this node\n")
		}
		if len(g.AlsoRestoresOn) > 0 {
			fmt.Fprintf(e.stdout, "  its checkpoints also restore on class %s\n", strings.Join(g.AlsoRestoresOn, ", "))
		}
	}
	if len(m.Unclassified) > 0 {
		fmt.Fprintf(e.stdout, "no class published: %s (run slurm-dmtcp-nodeprobe publish there)\n", strings.Join(m.Unclassified, " "))
	}
	for _, n := range m.Nodes {
		if len(n.Conflict) > 0 {
			fmt.Fprintf(e.stdout, "node %s carries several class features (%s): stale; publish again there\n", n.Name, strings.Join(n.Conflict, ", "))
		}
	}
	for _, class := range slices.Sorted(maps.Keys(byClass)) {
		if !mapHasClass(m, class) {
			fmt.Fprintf(e.stdout, "note: --facts class %s is published by no node\n", class)
		}
	}
	return nil
}

func mapHasClass(m slurm.Map, class string) bool {
	for _, g := range m.Group {
		if g.Class == class {
			return true
		}
	}
	return false
}
