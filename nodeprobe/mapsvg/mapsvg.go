// Package mapsvg draws the cluster's compatibility classes (slurm.Map) as one standalone SVG
// picture: a box per class with its nodes, the nodes with no class or a stale one, which
// classes also restore each other's checkpoints, and, where the facts of two classes are
// known, what differs between them. It uses no script, font or file from elsewhere, so a
// browser opens it from disk.
package mapsvg

import (
	"fmt"
	"html"
	"io"
	"strings"

	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/facts"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
)

// Pair is what differs when a checkpoint of class From is restored on class To.
type Pair struct {
	From, To    string
	Differences []facts.Difference // blocking and warning ones; info ones are left out
}

// Picture is what Write draws.
type Picture struct {
	Map slurm.Map
	// Pairs: the classes whose facts are known (map --facts), in both directions.
	Pairs []Pair
	// Known: the classes whose facts are known.
	Known map[string]bool
}

// Geometry, in SVG user units (pixels).
const (
	margin     = 20
	boxW       = 300
	gap        = 24
	perRow     = 3 // class boxes in a row
	nodeW      = 88
	nodeH      = 24
	nodesInRow = 3
	headerH    = 58
	lineH      = 18
	maxDiffs   = 8 // differences listed for one pair
	charW      = 7 // width of a character of 12px sans-serif, about
)

var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#e15759", "#9c755f"}

type svg struct {
	b strings.Builder
}

func (s *svg) f(format string, a ...any) { fmt.Fprintf(&s.b, format, a...) }

func esc(v string) string { return html.EscapeString(v) }

// box is one group drawn: a class, or the nodes without one.
type box struct {
	title, sub, color string
	nodes             []string
	marked            map[string]bool // nodes drawn in red (a stale class)
	notes             []string
}

func (b box) height() int {
	rows := (len(b.nodes) + nodesInRow - 1) / nodesInRow
	return headerH + rows*(nodeH+6) + len(b.notes)*lineH + 12
}

func boxes(p Picture) []box {
	var out []box
	for i, g := range p.Map.Group {
		b := box{title: "class " + g.Class, sub: fmt.Sprintf("feature %s, %d node(s)", g.Feature, len(g.Nodes)),
			color: palette[i%len(palette)], nodes: g.Nodes}
		if len(g.AlsoRestoresOn) > 0 {
			b.notes = append(b.notes, "also restores on: "+strings.Join(g.AlsoRestoresOn, ", "))
		}
		if !p.Known[g.Class] {
			b.notes = append(b.notes, "facts unknown (map --facts)")
		}
		out = append(out, b)
	}
	if len(p.Map.Unclassified) > 0 {
		b := box{title: "no class", sub: fmt.Sprintf("%d node(s): run slurm-dmtcp-nodeprobe publish", len(p.Map.Unclassified)),
			color: "#9a9a9a", nodes: p.Map.Unclassified, marked: map[string]bool{}}
		for _, n := range p.Map.Nodes {
			if len(n.Conflict) > 0 {
				b.marked[n.Name] = true
			}
		}
		if len(b.marked) > 0 {
			b.notes = append(b.notes, "red: several class features (stale)")
		}
		out = append(out, b)
	}
	return out
}

// Write draws p as an SVG document.
func Write(w io.Writer, p Picture) error {
	bs := boxes(p)
	cols := min(perRow, max(1, len(bs)))
	width := 2*margin + cols*boxW + (cols-1)*gap
	var s svg
	y := margin + 40
	body := svg{}
	// Class boxes, row by row.
	for r := 0; r*perRow < len(bs); r++ {
		row := bs[r*perRow : min(len(bs), (r+1)*perRow)]
		h := 0
		for _, b := range row {
			h = max(h, b.height())
		}
		for c, b := range row {
			drawBox(&body, margin+c*(boxW+gap), y, h, b)
		}
		y += h + gap
	}
	if len(bs) == 0 {
		body.f(`<text x="%d" y="%d" class="note">Slurm lists no node.</text>`+"\n", margin, y)
		y += lineH + gap
	}
	// What differs between classes.
	if len(p.Pairs) > 0 {
		body.f(`<text x="%d" y="%d" class="h2">What differs between classes (checkpoint of → restored on)</text>`+"\n", margin, y)
		y += lineH + 6
		for _, pr := range p.Pairs {
			verdict, color := "restores", "#2e7d32"
			for _, d := range pr.Differences {
				if d.Severity == facts.Blocking {
					verdict, color = "cannot restore", "#c62828"
					break
				}
			}
			body.f(`<g class="pair" data-from="%s" data-to="%s">`, esc(pr.From), esc(pr.To))
			body.f(`<text x="%d" y="%d" class="pairhead"><tspan>%s → %s: </tspan><tspan fill="%s">%s</tspan></text>`+"\n",
				margin, y, esc(pr.From), esc(pr.To), color, verdict)
			y += lineH
			ds := pr.Differences
			if len(ds) == 0 {
				body.f(`<text x="%d" y="%d" class="diff">no difference that matters</text>`+"\n", margin+16, y)
				y += lineH
			}
			for i, d := range ds {
				if i == maxDiffs {
					body.f(`<text x="%d" y="%d" class="diff">… and %d more (slurm-dmtcp-nodeprobe diff)</text>`+"\n", margin+16, y, len(ds)-maxDiffs)
					y += lineH
					break
				}
				// Cut to the picture's width; the whole sentence is the line's tooltip.
				line := fmt.Sprintf("%s %s: %s", d.Severity, d.Fact, d.Why)
				body.f(`<text x="%d" y="%d" class="diff %s"><title>%s</title>%s</text>`+"\n", margin+16, y, esc(string(d.Severity)),
					esc(line), esc(short(line, (width-2*margin-16)/charW)))
				y += lineH
			}
			body.f("</g>\n")
		}
	}
	height := y + margin
	s.f(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">`+"\n",
		width, height, width, height)
	s.f("<title>slurm-dmtcp node classes</title>\n")
	s.f(`<style>
.h1 { font-size: 18px; font-weight: bold; fill: #222; }
.h2 { font-size: 14px; font-weight: bold; fill: #222; }
.boxtitle { font-size: 14px; font-weight: bold; fill: #fff; }
.boxsub { font-size: 11px; fill: #fff; }
.node { font-size: 12px; fill: #222; }
.note, .diff { font-size: 12px; fill: #444; }
.diff.blocking { fill: #c62828; }
.diff.warning { fill: #b26a00; }
.pairhead { font-size: 13px; fill: #222; }
</style>
`)
	s.f(`<rect width="100%%" height="100%%" fill="#fafafa"/>` + "\n")
	s.f(`<text x="%d" y="%d" class="h1">%d node(s), %d class(es)</text>`+"\n", margin, margin+18, len(p.Map.Nodes), len(p.Map.Group))
	s.b.WriteString(body.b.String())
	s.f("</svg>\n")
	_, err := io.WriteString(w, s.b.String())
	return err
}

func drawBox(s *svg, x, y, h int, b box) {
	s.f(`<g class="class" data-class="%s">`+"\n", esc(strings.TrimPrefix(b.title, "class ")))
	s.f(`<rect x="%d" y="%d" width="%d" height="%d" rx="8" fill="#fff" stroke="%s" stroke-width="2"/>`+"\n", x, y, boxW, h, b.color)
	s.f(`<rect x="%d" y="%d" width="%d" height="%d" rx="8" fill="%s"/>`+"\n", x, y, boxW, headerH-12, b.color)
	s.f(`<text x="%d" y="%d" class="boxtitle">%s</text>`+"\n", x+10, y+20, esc(b.title))
	s.f(`<text x="%d" y="%d" class="boxsub">%s</text>`+"\n", x+10, y+37, esc(b.sub))
	ny := y + headerH
	for i, n := range b.nodes {
		nx := x + 10 + (i%nodesInRow)*(nodeW+8)
		if i > 0 && i%nodesInRow == 0 {
			ny += nodeH + 6
		}
		stroke := b.color
		if b.marked[n] {
			stroke = "#c62828"
		}
		s.f(`<g class="node" data-node="%s"><title>%s</title><rect x="%d" y="%d" width="%d" height="%d" rx="4" fill="#f4f4f4" stroke="%s"/>`,
			esc(n), esc(n), nx, ny, nodeW, nodeH, stroke)
		s.f(`<text x="%d" y="%d" class="node" text-anchor="middle">%s</text></g>`+"\n", nx+nodeW/2, ny+16, esc(short(n, 12)))
	}
	if len(b.nodes) > 0 {
		ny += nodeH + 6
	}
	for i, note := range b.notes {
		s.f(`<text x="%d" y="%d" class="note">%s</text>`+"\n", x+10, ny+14+i*lineH, esc(note))
	}
	s.f("</g>\n")
}

// short cuts a node name to n characters (the full name is in the group's data-node).
func short(v string, n int) string {
	r := []rune(v)
	if len(r) <= n {
		return v
	}
	return string(r[:n-1]) + "…"
}

// PairsOf compares every two classes of byClass (facts by class), in both directions,
// keeping blocking and warning differences, for the classes drawn in m.
func PairsOf(m slurm.Map, byClass map[string]facts.Facts) []Pair {
	var out []Pair
	for _, a := range m.Group {
		for _, b := range m.Group {
			fa, okA := byClass[a.Class]
			fb, okB := byClass[b.Class]
			if a.Class == b.Class || !okA || !okB {
				continue
			}
			p := Pair{From: a.Class, To: b.Class}
			for _, d := range facts.Diff(fa, fb) {
				if d.Severity != facts.Info {
					p.Differences = append(p.Differences, d)
				}
			}
			out = append(out, p)
		}
	}
	return out
}
