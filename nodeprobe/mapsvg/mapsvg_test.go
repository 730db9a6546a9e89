package mapsvg

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/facts"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
)

// parse checks that doc is well-formed XML and returns the data-node and data-class values
// and the text of every <text>.
func parse(t *testing.T, doc string) (nodes, classes []string, text string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(doc))
	var sb strings.Builder
	inText := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "well-formed SVG")
		switch v := tok.(type) {
		case xml.StartElement:
			if v.Name.Local == "text" {
				inText++
			}
			for _, a := range v.Attr {
				switch a.Name.Local {
				case "data-node":
					nodes = append(nodes, a.Value)
				case "data-class":
					classes = append(classes, a.Value)
				}
			}
		case xml.EndElement:
			if v.Name.Local == "text" {
				inText--
				sb.WriteString("\n")
			}
		case xml.CharData:
			if inText > 0 {
				sb.Write(v)
			}
		}
	}
	return nodes, classes, sb.String()
}

func nodesOf(spec ...[2]string) []slurm.Node {
	var out []slurm.Node
	for _, s := range spec {
		out = append(out, slurm.Node{Name: s[0], Class: s[1]})
	}
	return out
}

func TestWrite(t *testing.T) {
	intel := facts.Facts{SchemaVersion: 1, Arch: "x86_64", ISAFeatures: []string{"avx2", "avx512f"}, X86Level: 4, PageSize: 4096}
	amd := facts.Facts{SchemaVersion: 1, Arch: "x86_64", ISAFeatures: []string{"avx2"}, X86Level: 3, PageSize: 4096}
	for _, tc := range []struct {
		name        string
		nodes       []slurm.Node
		byClass     map[string]facts.Facts
		wantClasses []string
		wantText    []string
		notText     []string
	}{
		{"two classes, facts known", nodesOf([2]string{"n1", "c-intel"}, [2]string{"n2", "c-intel"}, [2]string{"n3", "c-amd"}),
			map[string]facts.Facts{"c-intel": intel, "c-amd": amd}, []string{"c-intel", "c-amd"},
			[]string{"3 node(s), 2 class(es)", "class c-intel", "feature dmtcp_c-intel, 2 node(s)", "c-intel → c-amd: cannot restore",
				"blocking isa_features", "avx512f"}, []string{"facts unknown"}},
		{"facts unknown, a node without class", nodesOf([2]string{"n1", "c-intel"}, [2]string{"gpu<01>&x", ""}), nil,
			[]string{"c-intel", "no class"}, []string{"facts unknown (map --facts)", "run slurm-dmtcp-nodeprobe publish", "gpu<01>&x"},
			[]string{"What differs"}},
		{"no node", nil, nil, nil, []string{"0 node(s), 0 class(es)", "Slurm lists no node."}, nil},
		{"many nodes", func() []slurm.Node {
			var ns []slurm.Node
			for _, n := range []string{"a1", "a2", "a3", "a4", "a5", "a6", "a7", "averyveryverylongnodename"} {
				ns = append(ns, slurm.Node{Name: n, Class: "c-a"})
			}
			return ns
		}(), nil, []string{"c-a"}, []string{"8 node(s)", "averyveryve…"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := slurm.BuildMap(tc.nodes, nil)
			known := map[string]bool{}
			for c := range tc.byClass {
				known[c] = true
			}
			var b bytes.Buffer
			require.NoError(t, Write(&b, Picture{Map: m, Pairs: PairsOf(m, tc.byClass), Known: known}))
			assert.True(t, strings.HasPrefix(b.String(), `<svg xmlns="http://www.w3.org/2000/svg"`))
			nodes, classes, text := parse(t, b.String())
			var want []string
			for _, n := range tc.nodes {
				want = append(want, n.Name)
			}
			assert.ElementsMatch(t, want, nodes, "every node drawn once")
			assert.Equal(t, tc.wantClasses, classes)
			for _, w := range tc.wantText {
				assert.Contains(t, text, w)
			}
			for _, w := range tc.notText {
				assert.NotContains(t, text, w)
			}
		})
	}
}

func TestPairsOf(t *testing.T) {
	a := facts.Facts{SchemaVersion: 1, Arch: "x86_64", ISAFeatures: []string{"avx2"}, Hostname: "h1"}
	b := facts.Facts{SchemaVersion: 1, Arch: "x86_64", ISAFeatures: []string{"avx2", "avx512f"}, Hostname: "h2"}
	m := slurm.BuildMap(nodesOf([2]string{"n1", "c-a"}, [2]string{"n2", "c-b"}, [2]string{"n3", "c-c"}), nil)
	ps := PairsOf(m, map[string]facts.Facts{"c-a": a, "c-b": b})
	require.Len(t, ps, 2, "both directions of the classes whose facts are known, none with c-c")
	for _, p := range ps {
		for _, d := range p.Differences {
			assert.NotEqual(t, facts.Info, d.Severity, "info differences (the host name) are left out")
		}
	}
}
