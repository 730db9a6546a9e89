// Package slurm is slurm-dmtcp's one Slurm client: it runs scontrol and squeue (Runner,
// Scontrol, Squeue: each call bounded, ErrUnreachable when slurmctld does not answer) and
// reads scontrol's one-line records (ParseRecord; ParseNodes of show node -o, ParseJob and
// ShowJob of show job -o, StepNodes of show step -o). The agent, its job Comment
// (agent/jobcomment), dmtcpctl --job and the node probe run Slurm's programs through it;
// the benchmark and the integration tests read scontrol's records with it.
//
// On top of that it publishes a node's compatibility class as a Slurm node feature and
// reads every node's class back from Slurm's own node data (scontrol show node -o), so that
// checkpoints can be placed on nodes of a compatible class with a feature constraint.
//
// The feature of class "c-0123456789" is "dmtcp_c-0123456789". Slurm 22.05 accepts it in
// node features (scontrol update NodeName=... AvailableFeatures=... ActiveFeatures=...) and
// in job constraints (--constraint, scontrol update JobId=... Features=...), where it can be
// combined with other features by "&" and parentheses. A job constraint naming a feature
// that no node has is refused by slurmctld ("Invalid feature specification").
package slurm

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// FeaturePrefix starts every feature this package publishes.
const FeaturePrefix = "dmtcp_"

var classRE = regexp.MustCompile(`^c-[0-9a-f]{10}$`)

// Feature returns the node feature that carries a class id.
func Feature(class string) (string, error) {
	if !classRE.MatchString(class) {
		return "", fmt.Errorf("class %q: want c- and 10 lower-case hex digits (facts.Class)", class)
	}
	return FeaturePrefix + class, nil
}

// ClassOf returns the class a feature carries, or "" when it is not one of ours.
func ClassOf(feature string) string {
	c, ok := strings.CutPrefix(feature, FeaturePrefix)
	if !ok || !classRE.MatchString(c) {
		return ""
	}
	return c
}

// Node is what this package reads of one node in scontrol show node -o.
type Node struct {
	Name              string   `json:"name"`
	HostName          string   `json:"hostname,omitempty"`
	Addr              string   `json:"addr,omitempty"` // NodeAddr=
	State             string   `json:"state"`
	AvailableFeatures []string `json:"available_features"`
	ActiveFeatures    []string `json:"active_features"`
	// Class is the class of the first class feature among the active ones ("" when none).
	Class string `json:"class,omitempty"`
	// Conflict names other class features of the node (a stale publication): the node's
	// class is then uncertain and it joins no group.
	Conflict []string `json:"conflict,omitempty"`
}

// ParseNodes reads the output of scontrol show node -o (one node a line).
func ParseNodes(out string) ([]Node, error) {
	var nodes []Node
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		kv := ParseRecord(line)
		name := kv["NodeName"]
		if name == "" {
			return nil, fmt.Errorf("scontrol show node: no NodeName= in line %q", firstN(line, 80))
		}
		n := Node{Name: name, HostName: kv["NodeHostName"], Addr: kv["NodeAddr"], State: kv["State"],
			AvailableFeatures: featureList(kv["AvailableFeatures"]), ActiveFeatures: featureList(kv["ActiveFeatures"])}
		for _, f := range n.ActiveFeatures {
			if c := ClassOf(f); c != "" {
				if n.Class == "" {
					n.Class = c
				} else if c != n.Class {
					n.Conflict = append(n.Conflict, c)
				}
			}
		}
		if len(n.Conflict) > 0 {
			n.Conflict = append([]string{n.Class}, n.Conflict...)
			n.Class = ""
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

func featureList(v string) []string {
	if v == "" || v == "(null)" {
		return []string{}
	}
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// WithClass returns features without any class feature of ours, plus feature (appended,
// order of the others kept).
func WithClass(features []string, feature string) []string {
	out := make([]string, 0, len(features)+1)
	for _, f := range features {
		if ClassOf(f) == "" && f != feature {
			out = append(out, f)
		}
	}
	return append(out, feature)
}

// ShowNodes runs scontrol show node -o [name] and parses it.
func ShowNodes(ctx context.Context, run Runner, name string) ([]Node, error) {
	args := []string{"show", "node", "-o"}
	if name != "" {
		args = append(args, name)
	}
	out, err := run(ctx, args...)
	if err != nil {
		return nil, err
	}
	return ParseNodes(string(out))
}

// FindNode picks the node named name, or whose NodeHostName is name.
func FindNode(nodes []Node, name string) (Node, error) {
	for _, n := range nodes {
		if n.Name == name {
			return n, nil
		}
	}
	for _, n := range nodes {
		if n.HostName == name {
			return n, nil
		}
	}
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	return Node{}, fmt.Errorf("node %q is not in Slurm's node list (%s); give its NodeName with --node", name, strings.Join(names, " "))
}

// Published says what Publish did.
type Published struct {
	Node    string   `json:"node"`
	Feature string   `json:"feature"`
	Changed bool     `json:"changed"`
	Removed []string `json:"removed,omitempty"` // older class features replaced
	// Available and Active are the node's features after the update.
	Available []string `json:"available_features"`
	Active    []string `json:"active_features"`
}

// ErrNoNode means Slurm does not know the node.
var ErrNoNode = errors.New("node unknown to Slurm")

// Publish makes feature (see Feature) the node's only class feature, in both its available
// and its active features, keeping every other feature. Nothing is updated when the node
// already has exactly that. Needs Slurm administrator rights (root).
func Publish(ctx context.Context, run Runner, node, class string) (Published, error) {
	feature, err := Feature(class)
	if err != nil {
		return Published{}, err
	}
	nodes, err := ShowNodes(ctx, run, node)
	if err != nil {
		return Published{}, fmt.Errorf("publish %s on node %s: %w", feature, node, err)
	}
	n, err := FindNode(nodes, node)
	if err != nil {
		return Published{}, fmt.Errorf("publish %s: %w: %w", feature, ErrNoNode, err)
	}
	p := Published{Node: n.Name, Feature: feature,
		Available: WithClass(n.AvailableFeatures, feature), Active: WithClass(n.ActiveFeatures, feature)}
	for _, f := range append(slices.Clone(n.AvailableFeatures), n.ActiveFeatures...) {
		if ClassOf(f) != "" && f != feature && !slices.Contains(p.Removed, f) {
			p.Removed = append(p.Removed, f)
		}
	}
	if slices.Equal(p.Available, n.AvailableFeatures) && slices.Equal(p.Active, n.ActiveFeatures) {
		return p, nil
	}
	if _, err := run(ctx, "update", "NodeName="+n.Name, "AvailableFeatures="+strings.Join(p.Available, ","),
		"ActiveFeatures="+strings.Join(p.Active, ",")); err != nil {
		return Published{}, fmt.Errorf("publish %s on node %s: %w", feature, n.Name, err)
	}
	p.Changed = true
	return p, nil
}

// Group is a set of nodes of one class: a checkpoint taken on one of them restores on any
// other as far as the facts tell.
type Group struct {
	Class   string   `json:"class"`
	Feature string   `json:"feature"`
	Nodes   []string `json:"nodes"`
	// AlsoRestoresOn lists other classes whose nodes can restore checkpoints of this class
	// (a newer CPU, say), when the facts of both classes are known.
	AlsoRestoresOn []string `json:"also_restores_on,omitempty"`
}

// Map is every node's class and the groups of nodes checkpoints can move between.
type Map struct {
	Nodes []Node  `json:"nodes"`
	Group []Group `json:"groups"`
	// Unclassified nodes publish no class (no probe ran there, or it could not publish),
	// or several.
	Unclassified []string `json:"unclassified"`
}

// BuildMap groups nodes by class, largest group first. compatible, when not nil, says
// whether checkpoints of class a restore on nodes of class b (false when unknown).
func BuildMap(nodes []Node, compatible func(a, b string) bool) Map {
	m := Map{Nodes: nodes, Group: []Group{}, Unclassified: []string{}}
	idx := map[string]int{}
	for _, n := range nodes {
		if n.Class == "" {
			m.Unclassified = append(m.Unclassified, n.Name)
			continue
		}
		i, ok := idx[n.Class]
		if !ok {
			i = len(m.Group)
			idx[n.Class] = i
			m.Group = append(m.Group, Group{Class: n.Class, Feature: FeaturePrefix + n.Class})
		}
		m.Group[i].Nodes = append(m.Group[i].Nodes, n.Name)
	}
	slices.SortStableFunc(m.Group, func(a, b Group) int {
		if len(a.Nodes) != len(b.Nodes) {
			return len(b.Nodes) - len(a.Nodes)
		}
		return strings.Compare(a.Class, b.Class)
	})
	if compatible != nil {
		for i := range m.Group {
			for _, o := range m.Group {
				if o.Class != m.Group[i].Class && compatible(m.Group[i].Class, o.Class) {
					m.Group[i].AlsoRestoresOn = append(m.Group[i].AlsoRestoresOn, o.Class)
				}
			}
		}
	}
	return m
}

// Constraint returns a job constraint that requires feature on top of the job's own
// constraint existing (scontrol's Features=, "" or "(null)" for none). Class features of
// ours in a plain "&" list are replaced; any other expression is kept whole in parentheses.
func Constraint(existing, feature string) string {
	existing = strings.TrimSpace(existing)
	if existing == "" || existing == "(null)" {
		return feature
	}
	if !strings.ContainsAny(existing, "|()[]*,!") {
		var keep []string
		for _, f := range strings.Split(existing, "&") {
			if f = strings.TrimSpace(f); f != "" && ClassOf(f) == "" && f != feature {
				keep = append(keep, f)
			}
		}
		return strings.Join(append(keep, feature), "&")
	}
	return "(" + existing + ")&" + feature
}
