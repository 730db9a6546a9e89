package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
)

// fakeSlurm plays scontrol for one cluster: show node -o prints the nodes, update changes
// a node's features, like slurmctld does.
type fakeSlurm struct {
	mu       sync.Mutex
	nodes    map[string][2]string // name -> available, active
	order    []string
	updates  int
	down     bool
	lastPath string
}

func newFakeSlurm(nodes ...[3]string) *fakeSlurm {
	f := &fakeSlurm{nodes: map[string][2]string{}}
	for _, n := range nodes {
		f.nodes[n[0]] = [2]string{n[1], n[2]}
		f.order = append(f.order, n[0])
	}
	return f
}

func (f *fakeSlurm) runner(path string) slurm.Runner {
	return func(_ context.Context, args ...string) ([]byte, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.lastPath = path
		if f.down {
			return nil, errors.New("scontrol: Unable to contact slurm controller (connect failure)")
		}
		switch {
		case len(args) >= 3 && args[0] == "show" && args[1] == "node":
			var b strings.Builder
			for _, n := range f.order {
				if len(args) == 4 && args[3] != n {
					continue
				}
				feat := f.nodes[n]
				av := feat[0]
				if av == "" {
					av = "(null)"
				}
				b.WriteString("NodeName=" + n + " Arch=x86_64 AvailableFeatures=" + av + " ActiveFeatures=" + feat[1] +
					" NodeHostName=" + n + " OS=Linux 6.1.0 #1 SMP State=IDLE Partitions=debug\n")
			}
			if b.Len() == 0 {
				return nil, errors.New("Node " + args[3] + " not found")
			}
			return []byte(b.String()), nil
		case len(args) == 4 && args[0] == "update":
			name := strings.TrimPrefix(args[1], "NodeName=")
			f.nodes[name] = [2]string{strings.TrimPrefix(args[2], "AvailableFeatures="), strings.TrimPrefix(args[3], "ActiveFeatures=")}
			f.updates++
			return nil, nil
		}
		return nil, errors.New("fake scontrol: unexpected " + strings.Join(args, " "))
	}
}

func slurmEnv(stdout, stderr *bytes.Buffer, f *fakeSlurm) env {
	e := testEnv(stdout, stderr)
	e.scontrol = f.runner
	e.hostname = func() (string, error) { return "n1.cluster.example", nil }
	return e
}

func TestPublishCommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "nodefacts.db")
	intel := []string{"--db", db, "--root", intelRoot, "--dmtcp-prefix", dmtcp300}
	fs := newFakeSlurm([3]string{"n1", "ib,dmtcp_c-aaaaaaaaaa", "ib,dmtcp_c-aaaaaaaaaa"}, [3]string{"n2", "", ""})
	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		stdout  string
		stderr  string
		updates int
	}{
		{"replaces the old class, keeps ib", append([]string{"publish"}, intel...), ExitOK,
			"node n1: class " + intelClass + " published as feature dmtcp_" + intelClass + " (replaced dmtcp_c-aaaaaaaaaa)\n", "", 1},
		{"second run changes nothing", append([]string{"publish"}, intel...), ExitOK,
			"node n1: class " + intelClass + " already published as feature dmtcp_" + intelClass + "\n", "", 1},
		{"other node by --node", append([]string{"publish", "--node", "n2"}, intel...), ExitOK,
			"node n2: class " + intelClass + " published as feature dmtcp_" + intelClass + "\n", "", 2},
		{"unknown node", append([]string{"publish", "--node", "n9"}, intel...), ExitError, "", "Node n9 not found", 2},
		{"stray argument", append([]string{"publish", "extra"}, intel...), ExitUsage, "", `publish: want 0 argument(s), got 1 ("extra")`, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tc.args, slurmEnv(&out, &errb, fs))
			assert.Equal(t, tc.code, code, errb.String())
			if tc.stdout != "" {
				assert.Equal(t, tc.stdout, out.String())
			}
			assert.Contains(t, errb.String(), tc.stderr)
			assert.Equal(t, tc.updates, fs.updates)
		})
	}
	assert.Equal(t, [2]string{"ib,dmtcp_" + intelClass, "ib,dmtcp_" + intelClass}, fs.nodes["n1"])
	assert.Equal(t, "scontrol", fs.lastPath)

	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"publish", "--json", "--scontrol", "/opt/slurm/bin/scontrol"}, intel...), slurmEnv(&out, &errb, fs))
	require.Equal(t, ExitOK, code, errb.String())
	assert.Equal(t, "/opt/slurm/bin/scontrol", fs.lastPath)
	var r map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &r))
	assert.Equal(t, intelClass, r["class"])
	assert.Equal(t, "n1", r["node"])
	assert.Equal(t, false, r["changed"])
	assert.Equal(t, []any{"ib", "dmtcp_" + intelClass}, r["active_features"])
}

func TestMapCommand(t *testing.T) {
	fs := newFakeSlurm(
		[3]string{"n1", "dmtcp_" + intelClass, "dmtcp_" + intelClass},
		[3]string{"n2", "ib,dmtcp_" + intelClass, "ib,dmtcp_" + intelClass},
		[3]string{"n3", "dmtcp_c-aaaaaaaaaa", "dmtcp_c-aaaaaaaaaa"},
		[3]string{"n4", "", ""},
	)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"map"}, slurmEnv(&out, &errb, fs))
	require.Equal(t, ExitOK, code, errb.String())
	assert.Equal(t, "4 node(s), 2 class(es)\n"+
		"class "+intelClass+" (feature dmtcp_"+intelClass+"): 2 node(s): n1 n2\n"+
		"  checkpoints move freely between these nodes\n"+
		"class c-aaaaaaaaaa (feature dmtcp_c-aaaaaaaaaa): 1 node(s): n3\n"+
		"  checkpoints restore only on this node\n"+
		"no class published: n4 (run slurm-dmtcp-nodeprobe publish there)\n", out.String())

	out.Reset()
	code = run(context.Background(), []string{"map", "--json", "--facts", intelJSON, "--facts", amdJSON}, slurmEnv(&out, &errb, fs))
	require.Equal(t, ExitOK, code, errb.String())
	var m slurm.Map
	require.NoError(t, json.Unmarshal(out.Bytes(), &m))
	require.Len(t, m.Group, 2)
	assert.Equal(t, []string{"n1", "n2"}, m.Group[0].Nodes)
	assert.Equal(t, []string{"n4"}, m.Unclassified)
	assert.Len(t, m.Nodes, 4)

	out.Reset()
	code = run(context.Background(), []string{"map", "--svg", "--facts", intelJSON}, slurmEnv(&out, &errb, fs))
	require.Equal(t, ExitOK, code, errb.String())
	svg := out.String()
	assert.True(t, strings.HasPrefix(svg, "<svg "), svg)
	for _, n := range []string{"n1", "n2", "n3", "n4"} {
		assert.Contains(t, svg, `data-node="`+n+`"`)
	}
	assert.Contains(t, svg, `data-class="`+intelClass+`"`)
	assert.Contains(t, svg, "facts unknown (map --facts)", "c-aaaaaaaaaa has no --facts")

	for _, tc := range []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"bad facts file", []string{"map", "--facts", notFacts}, ExitError, "map --facts"},
		{"missing facts file", []string{"map", "--facts", "/nonexistent.json"}, ExitError, "/nonexistent.json"},
		{"stray argument", []string{"map", "n1"}, ExitUsage, `map: want 0 argument(s), got 1 ("n1")`},
		{"json and svg", []string{"map", "--json", "--svg"}, ExitUsage, "--json and --svg exclude each other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			assert.Equal(t, tc.code, run(context.Background(), tc.args, slurmEnv(&out, &errb, fs)))
			assert.Contains(t, errb.String(), tc.err)
		})
	}

	fs.down = true
	out.Reset()
	errb.Reset()
	assert.Equal(t, ExitError, run(context.Background(), []string{"map"}, slurmEnv(&out, &errb, fs)))
	assert.Contains(t, errb.String(), "map: scontrol: Unable to contact slurm controller")
}

// serve --publish publishes after the first probe; when slurmctld is down it logs the
// failure, keeps serving and publishes once it answers.
func TestServePublishes(t *testing.T) {
	db := filepath.Join(t.TempDir(), "nodefacts.db")
	fs := newFakeSlurm([3]string{"n1", "", ""})
	fs.down = true
	var stdout bytes.Buffer
	var stderr syncBuffer
	e := slurmEnv(&stdout, &bytes.Buffer{}, fs)
	e.stderr = &stderr
	e.now = time.Now
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--every", "1s", "--publish", "--db", db, "--root", intelRoot, "--dmtcp-prefix", dmtcp300}, e)
	}()
	require.Eventually(t, func() bool {
		return strings.Contains(stderr.String(), "publishing the class as a Slurm node feature failed")
	},
		5*time.Second, 10*time.Millisecond)
	assert.Contains(t, stderr.String(), "Unable to contact slurm controller")
	fs.mu.Lock()
	fs.down = false
	fs.mu.Unlock()
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "class published as a Slurm node feature") },
		5*time.Second, 10*time.Millisecond)
	cancel()
	assert.Equal(t, ExitOK, <-done)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	assert.Equal(t, [2]string{"dmtcp_" + intelClass, "dmtcp_" + intelClass}, fs.nodes["n1"])
	assert.Equal(t, 1, fs.updates, "published once, then unchanged")
	assert.Contains(t, stderr.String(), "feature=dmtcp_"+intelClass)
}

func TestServeNodeNeedsPublish(t *testing.T) {
	code, _, stderr := runTest(t, "serve", "--node", "n1", "--db", filepath.Join(t.TempDir(), "x.db"))
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, stderr, "serve: --node n1 is only used with --publish")
}

// syncBuffer is a bytes.Buffer safe for the serving goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
