//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/history"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
)

// comment is the job's Comment as the job's user sees it (squeue %k).
func (c *cluster) comment(t *testing.T, id string) string {
	t.Helper()
	r := c.run(t, testUser, "/tmp", nil, "squeue", "--noheader", "--jobs", id, "--format", "%k")
	require.Equal(t, 0, r.code, r.stderr)
	return strings.TrimSpace(r.stdout)
}

// waitComment polls the job's Comment until it matches re.
func (c *cluster) waitComment(t *testing.T, id string, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	got := ""
	for time.Now().Before(deadline) {
		if got = c.comment(t, id); re.MatchString(got) {
			return got
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("job %s: Comment %q after %s, want %s", id, got, timeout, re)
	return ""
}

// waitEvents polls the batch step's history until it holds n events.
func waitEvents(t *testing.T, id string, n int, timeout time.Duration) []history.Event {
	t.Helper()
	u, err := user.Lookup(testUser)
	require.NoError(t, err)
	step := filepath.Join(u.HomeDir, ".slurm-dmtcp", id, "batch")
	deadline := time.Now().Add(timeout)
	var evs []history.Event
	for time.Now().Before(deadline) {
		evs, _, err = history.Read(step)
		require.NoError(t, err)
		if len(evs) >= n {
			return evs
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("job %s: %d history events after %s, want %d: %+v", id, len(evs), timeout, n, evs)
	return nil
}

var ourComment = regexp.MustCompile(`^slurm-dmtcp: gen=(\d+) at=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ size=[0-9.]+(B|KiB|MiB|GiB)( requeue=[a-z]+)?$`)

// The job's Comment shows its newest generation (and the agent's requeue with its reason)
// without dmtcpctl, and dmtcpctl history lists every checkpoint, requeue and restore of
// the job from its checkpoint folder once the job has ended.
func TestVisibleCommentAndHistory(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	dir := workdir(t)
	id, _ := c.startWaitJob(t, dir, "--requeue", "--open-mode=append")

	// 1. A checkpoint asked for: generation 1 in the Comment.
	r := c.ctlJob(t, testUser, id, "checkpoint")
	require.Equal(t, 0, r.code, r.stderr)
	got := c.waitComment(t, id, regexp.MustCompile(`^slurm-dmtcp: gen=1 `), 15*time.Second)
	assert.Regexp(t, ourComment, got)

	// 2. The computation dies: the agent requeues the job to restore it, and says why.
	pids := victimPids(t, id, "bash-script")
	require.Len(t, pids, 1, "the batch script's bash")
	require.NoError(t, syscall.Kill(pids[0], syscall.SIGKILL))
	got = c.waitComment(t, id, regexp.MustCompile(`requeue=recovery$`), 30*time.Second)
	assert.Regexp(t, ourComment, got)
	c.startOnce(t, id, 1)
	evs := waitEvents(t, id, 3, 60*time.Second)
	assert.Equal(t, history.KindRestore, evs[2].Kind)
	waitFile(t, dir+"/err", "restoring generation 1", 30*time.Second)
	time.Sleep(time.Second)
	assert.Regexp(t, `^slurm-dmtcp: gen=1 .* requeue=recovery$`, c.comment(t, id), "the requeue's reason stays until a newer generation")

	// 3. Slurm requeues it (the user): a checkpoint on its SIGTERM, generation 2, restored.
	r = c.run(t, testUser, "/tmp", nil, "scontrol", "requeue", id)
	require.Equal(t, 0, r.code, r.stderr)
	c.waitComment(t, id, regexp.MustCompile(`^slurm-dmtcp: gen=2 at=\S+ size=\S+$`), 30*time.Second)
	c.startOnce(t, id, 2)
	waitEvents(t, id, 5, 60*time.Second)
	waitFile(t, dir+"/out", "tick", 30*time.Second)
	c.stopWaitJob(t, dir, id)

	// 4. After the job: its timeline from the checkpoint folder, human and JSON.
	r = c.run(t, testUser, "/tmp", nil, c.dmtcpctl(), "history", id)
	require.Equal(t, 0, r.code, r.stderr)
	t.Logf("dmtcpctl history %s:\n%s", id, r.stdout)
	assert.Contains(t, r.stdout, "job "+id+" step batch: ")
	assert.Regexp(t, `checkpoint\s+1\s+request`, r.stdout)
	assert.Regexp(t, `requeue\s+1\s+recovery`, r.stdout)
	assert.Regexp(t, `checkpoint\s+2\s+signal`, r.stdout)
	r = c.run(t, testUser, "/tmp", nil, c.dmtcpctl(), "--json", "history", id)
	require.Equal(t, 0, r.code, r.stderr)
	var res struct {
		Steps []history.Timeline `json:"steps"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res), r.stdout)
	// The batch step's timeline (a folder left by an earlier job of the same id on this
	// test cluster may add others).
	require.NotEmpty(t, res.Steps)
	require.Equal(t, "batch", res.Steps[0].Step)
	var seq []string
	for _, e := range res.Steps[0].Events {
		seq = append(seq, fmt.Sprintf("%s:%d:gen%d:%s%s", e.Kind, e.Restart, e.Generation, e.Reason, e.Why))
	}
	assert.Equal(t, []string{"checkpoint:0:gen1:request", "requeue:0:gen1:recovery", "restore:1:gen1:request",
		"checkpoint:1:gen2:signal", "restore:2:gen2:signal"}, seq)
	for _, e := range res.Steps[0].Events {
		if e.Kind == history.KindCheckpoint {
			assert.Positive(t, e.Bytes, "size of generation %d", e.Generation)
		}
	}
	// scontrol shows it as well.
	r = c.run(t, testUser, "/tmp", nil, "scontrol", "show", "job", id)
	assert.Regexp(t, `(?m)^\s+Comment=slurm-dmtcp: gen=2 `, r.stdout)
}

// A Comment the user set is theirs: the agent leaves it, and the history still records.
func TestVisibleKeepsTheUsersComment(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	dir := workdir(t)
	id, _ := c.startWaitJob(t, dir, "--comment", "sweep 3 of 10")
	r := c.ctlJob(t, testUser, id, "checkpoint")
	require.Equal(t, 0, r.code, r.stderr)
	waitEvents(t, id, 1, 15*time.Second)
	time.Sleep(2 * time.Second) // the Comment would have been set by now
	assert.Equal(t, "sweep 3 of 10", c.comment(t, id))
	c.stopWaitJob(t, dir, id)
}

// map --svg of the real cluster opens in a headless browser, which renders every node and
// class.
func TestVisibleMapSVGInBrowser(t *testing.T) {
	c := newCluster(t)
	inst := needDMTCP(t)
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("SKIP: chromium is not installed (contrib/deps.sh installs it)")
	}
	before := c.node(t)
	t.Cleanup(func() {
		c.run(t, "", "/", nil, "scontrol", "update", "NodeName="+before.Name,
			"AvailableFeatures="+strings.Join(before.AvailableFeatures, ","), "ActiveFeatures="+strings.Join(before.ActiveFeatures, ","))
	})
	class := c.publish(t, inst.Bin)
	r := c.run(t, "", "/", nil, nodeprobe(t), "--db", c.probeDB("probe"), "show", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	dir := t.TempDir()
	factsFile := filepath.Join(dir, "facts.json")
	require.NoError(t, os.WriteFile(factsFile, []byte(r.stdout), 0o644))
	r = c.run(t, "", "/", nil, nodeprobe(t), "map", "--svg", "--facts", factsFile)
	require.Equal(t, 0, r.code, r.stderr)
	svg := filepath.Join(dir, "map.svg")
	require.NoError(t, os.WriteFile(svg, []byte(r.stdout), 0o644))

	chrome := func(args ...string) string {
		cmd := exec.Command(browser, append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + filepath.Join(dir, "profile")}, args...)...)
		cmd.Dir = dir
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		require.NoError(t, cmd.Run(), "chromium %v: %s", args, errb.String())
		return out.String()
	}
	dom := chrome("--dump-dom", "file://"+svg)
	var nodes []slurm.Node
	r = c.run(t, "", "/", nil, "scontrol", "show", "node", "-o")
	nodes, err = slurm.ParseNodes(r.stdout)
	require.NoError(t, err)
	require.NotEmpty(t, nodes)
	for _, n := range nodes {
		assert.Contains(t, dom, `data-node="`+n.Name+`"`, "node %s drawn", n.Name)
		assert.Regexp(t, `<text[^>]*class="node"[^>]*>`+regexp.QuoteMeta(n.Name)+`</text>`, dom, "node %s's name rendered", n.Name)
	}
	assert.Contains(t, dom, "class "+class)
	assert.Contains(t, dom, fmt.Sprintf("%d node(s), 1 class(es)", len(nodes)))
	png := filepath.Join(dir, "map.png")
	chrome("--screenshot="+png, "--window-size=1000,700", "file://"+svg)
	fi, err := os.Stat(png)
	require.NoError(t, err)
	assert.Greater(t, fi.Size(), int64(5000), "a picture, not a blank page")
}
