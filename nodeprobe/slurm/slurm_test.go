package slurm

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFeature(t *testing.T) {
	for _, tc := range []struct{ class, want, err string }{
		{"c-0123456789", "dmtcp_c-0123456789", ""},
		{"c-012345678", "", `class "c-012345678"`},
		{"C-0123456789", "", "want c- and 10 lower-case hex digits"},
		{"", "", `class ""`},
		{"c-01234567zz", "", "hex"},
	} {
		t.Run(tc.class, func(t *testing.T) {
			f, err := Feature(tc.class)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, f)
			assert.Equal(t, tc.class, ClassOf(f))
		})
	}
	assert.Equal(t, "", ClassOf("dmtcp_other"))
	assert.Equal(t, "", ClassOf("ib"))
}

func readNodes(t *testing.T) []Node {
	t.Helper()
	b, err := os.ReadFile("testdata/show-node-3.txt")
	require.NoError(t, err)
	nodes, err := ParseNodes(string(b))
	require.NoError(t, err)
	return nodes
}

func TestParseNodes(t *testing.T) {
	nodes := readNodes(t)
	require.Len(t, nodes, 5)
	assert.Equal(t, Node{Name: "n1", HostName: "n1", Addr: "10.0.0.1", State: "IDLE", AvailableFeatures: []string{"ib", "dmtcp_c-0123456789"},
		ActiveFeatures: []string{"ib", "dmtcp_c-0123456789"}, Class: "c-0123456789"}, nodes[0])
	assert.Equal(t, "n2-eth0", nodes[1].HostName)
	assert.Equal(t, "ALLOCATED", nodes[1].State)
	assert.Equal(t, "c-aaaaaaaaaa", nodes[2].Class)
	assert.Equal(t, Node{Name: "n4", HostName: "n4", State: "DOWN*", AvailableFeatures: []string{}, ActiveFeatures: []string{}}, nodes[3])
	assert.Equal(t, "", nodes[4].Class, "two classes: uncertain")
	assert.Equal(t, []string{"c-aaaaaaaaaa", "c-bbbbbbbbbb"}, nodes[4].Conflict)

	_, err := ParseNodes("Arch=x86_64 State=IDLE\n")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no NodeName=")
	none, err := ParseNodes("\n")
	require.NoError(t, err)
	assert.Empty(t, none)
}

func TestWithClass(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []string
	}{
		{"none", []string{}, []string{"dmtcp_c-0123456789"}},
		{"others kept", []string{"ib", "gpu"}, []string{"ib", "gpu", "dmtcp_c-0123456789"}},
		{"old class replaced", []string{"ib", "dmtcp_c-aaaaaaaaaa", "gpu"}, []string{"ib", "gpu", "dmtcp_c-0123456789"}},
		{"already there", []string{"dmtcp_c-0123456789", "ib"}, []string{"ib", "dmtcp_c-0123456789"}},
		{"lookalike kept", []string{"dmtcp_ok"}, []string{"dmtcp_ok", "dmtcp_c-0123456789"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, WithClass(tc.in, "dmtcp_c-0123456789"))
		})
	}
}

func TestConstraint(t *testing.T) {
	const f = "dmtcp_c-0123456789"
	for _, tc := range []struct{ in, want string }{
		{"", f},
		{"(null)", f},
		{"ib", "ib&" + f},
		{"ib&gpu", "ib&gpu&" + f},
		{"ib&dmtcp_c-aaaaaaaaaa", "ib&" + f},
		{f, f},
		{"ib|gpu", "(ib|gpu)&" + f},
		{"[rack1|rack2]", "([rack1|rack2])&" + f},
		{"(ib|gpu)&dmtcp_c-aaaaaaaaaa", "((ib|gpu)&dmtcp_c-aaaaaaaaaa)&" + f},
	} {
		t.Run(tc.in, func(t *testing.T) { assert.Equal(t, tc.want, Constraint(tc.in, f)) })
	}
}

// fakeScontrol answers show node from a text and records updates.
type fakeScontrol struct {
	show    string
	showErr error
	upErr   error
	calls   [][]string
}

func (f *fakeScontrol) run(_ context.Context, args ...string) ([]byte, error) {
	f.calls = append(f.calls, args)
	if args[0] == "show" {
		return []byte(f.show), f.showErr
	}
	return nil, f.upErr
}

func TestPublish(t *testing.T) {
	b, err := os.ReadFile("testdata/show-node-3.txt")
	require.NoError(t, err)
	lines := strings.Split(string(b), "\n")
	for _, tc := range []struct {
		name, show, node, class string
		showErr, upErr          error
		wantUpdate              []string
		changed                 bool
		removed                 []string
		err                     string
	}{
		{name: "unchanged", show: lines[0], node: "n1", class: "c-0123456789"},
		{name: "new class replaces old", show: lines[0], node: "n1", class: "c-aaaaaaaaaa", changed: true,
			removed:    []string{"dmtcp_c-0123456789"},
			wantUpdate: []string{"update", "NodeName=n1", "AvailableFeatures=ib,dmtcp_c-aaaaaaaaaa", "ActiveFeatures=ib,dmtcp_c-aaaaaaaaaa"}},
		{name: "first publication", show: lines[3], node: "n4", class: "c-0123456789", changed: true,
			wantUpdate: []string{"update", "NodeName=n4", "AvailableFeatures=dmtcp_c-0123456789", "ActiveFeatures=dmtcp_c-0123456789"}},
		{name: "by host name", show: lines[1], node: "n2-eth0", class: "c-aaaaaaaaaa", changed: true, removed: []string{"dmtcp_c-0123456789"},
			wantUpdate: []string{"update", "NodeName=n2", "AvailableFeatures=dmtcp_c-aaaaaaaaaa", "ActiveFeatures=dmtcp_c-aaaaaaaaaa"}},
		{name: "bad class", show: lines[0], node: "n1", class: "x", err: `class "x"`},
		{name: "unknown node", show: lines[0], node: "zz", class: "c-0123456789", err: `node "zz" is not in Slurm's node list (n1)`},
		{name: "scontrol fails", node: "n1", class: "c-0123456789", showErr: errors.New("Unable to contact slurm controller"), err: "Unable to contact slurm controller"},
		{name: "update refused", show: lines[3], node: "n4", class: "c-0123456789", upErr: errors.New("Access/permission denied"), err: "publish dmtcp_c-0123456789 on node n4: Access/permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeScontrol{show: tc.show, showErr: tc.showErr, upErr: tc.upErr}
			p, err := Publish(context.Background(), f.run, tc.node, tc.class)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.changed, p.Changed)
			assert.Equal(t, tc.removed, p.Removed)
			assert.Equal(t, []string{"show", "node", "-o", tc.node}, f.calls[0])
			if tc.wantUpdate == nil {
				assert.Len(t, f.calls, 1, "no update when the feature is in place")
			} else {
				require.Len(t, f.calls, 2)
				assert.Equal(t, tc.wantUpdate, f.calls[1])
			}
		})
	}
}

func TestBuildMap(t *testing.T) {
	nodes := readNodes(t)
	m := BuildMap(nodes, nil)
	require.Len(t, m.Group, 2)
	assert.Equal(t, Group{Class: "c-0123456789", Feature: "dmtcp_c-0123456789", Nodes: []string{"n1", "n2"}}, m.Group[0])
	assert.Equal(t, Group{Class: "c-aaaaaaaaaa", Feature: "dmtcp_c-aaaaaaaaaa", Nodes: []string{"n3"}}, m.Group[1])
	assert.Equal(t, []string{"n4", "n5"}, m.Unclassified)

	// Newer CPUs (c-aaaaaaaaaa) restore checkpoints of older ones, not the other way.
	m = BuildMap(nodes, func(a, b string) bool { return a == "c-0123456789" && b == "c-aaaaaaaaaa" })
	assert.Equal(t, []string{"c-aaaaaaaaaa"}, m.Group[0].AlsoRestoresOn)
	assert.Empty(t, m.Group[1].AlsoRestoresOn)

	empty := BuildMap(nil, nil)
	assert.Equal(t, []Group{}, empty.Group)
	assert.Equal(t, []string{}, empty.Unclassified)
}
