//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/history"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/cache"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/facts"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto/manifest"
)

// nodeprobe is the freshly built probe (make all).
func nodeprobe(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../../build/slurm-dmtcp-nodeprobe")
	require.NoError(t, err)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("SKIP: %s not built: run make all", p)
	}
	return p
}

// probeDB is the cluster's own probe cache (not the host's /var/lib one).
func (c *cluster) probeDB(name string) string {
	return filepath.Join(c.dir, name, "nodefacts.db")
}

// nodeLine is scontrol show node -o of the cluster's only node.
func (c *cluster) node(t *testing.T) slurm.Node {
	t.Helper()
	r := c.run(t, "", "/", nil, "scontrol", "show", "node", "-o")
	require.Equal(t, 0, r.code, r.stderr)
	nodes, err := slurm.ParseNodes(r.stdout)
	require.NoError(t, err)
	require.Len(t, nodes, 1, "a one-node cluster")
	return nodes[0]
}

// publish runs slurm-dmtcp-nodeprobe publish as root and returns the node's class.
func (c *cluster) publish(t *testing.T, dmtcpBin string) string { // dmtcpBin: DMTCP's bin folder
	t.Helper()
	r := c.run(t, "", "/", nil, nodeprobe(t), "--db", c.probeDB("probe"), "--dmtcp-prefix", filepath.Dir(dmtcpBin), "publish", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var p struct {
		Class   string `json:"class"`
		Feature string `json:"feature"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &p), r.stdout)
	require.Equal(t, "dmtcp_"+p.Class, p.Feature)
	return p.Class
}

// startOnce makes a pending job, requeued restarts times, start as soon as it may, and stops
// pushing once it ran (its restart count moved on, or it left PENDING): a job the agent
// sends back to the queue must not be pushed to start again on the same node.
func (c *cluster) startOnce(t *testing.T, id string, restarts int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		j := c.job(t, id)
		if j.State != "PENDING" || j.Restarts != restarts {
			return
		}
		c.run(t, "", "/", nil, "scontrol", "update", "JobId="+id, "StartTime=now")
		time.Sleep(300 * time.Millisecond)
	}
}

// setPolicy rewrites plugstack.conf while the test holds withPolicy's lock.
func (c *cluster) setPolicy(t *testing.T, args string) {
	t.Helper()
	require.NoError(t, os.WriteFile(c.plugstack, []byte(c.baseLine+" "+args+"\n"), 0o644))
}

// The class becomes a node feature that Slurm shows, beside the node's other features; a
// stale class feature is replaced; map reads it back from Slurm.
func TestProbePublishesNodeFeature(t *testing.T) {
	c := newCluster(t)
	inst := needDMTCP(t)
	before := c.node(t)
	t.Cleanup(func() {
		c.run(t, "", "/", nil, "scontrol", "update", "NodeName="+before.Name,
			"AvailableFeatures="+strings.Join(before.AvailableFeatures, ","), "ActiveFeatures="+strings.Join(before.ActiveFeatures, ","))
	})
	r := c.run(t, "", "/", nil, "scontrol", "update", "NodeName="+before.Name,
		"AvailableFeatures=sdmtcp_keep,dmtcp_c-0000000000", "ActiveFeatures=sdmtcp_keep,dmtcp_c-0000000000")
	require.Equal(t, 0, r.code, r.stderr)

	class := c.publish(t, inst.Bin)
	n := c.node(t)
	assert.Equal(t, []string{"sdmtcp_keep", "dmtcp_" + class}, n.AvailableFeatures)
	assert.Equal(t, []string{"sdmtcp_keep", "dmtcp_" + class}, n.ActiveFeatures)
	r = c.run(t, "", "/", nil, "scontrol", "show", "node", n.Name)
	assert.Contains(t, r.stdout, "ActiveFeatures=sdmtcp_keep,dmtcp_"+class)

	// The class is this node's facts' class, as the probe recorded them.
	r = c.run(t, "", "/", nil, nodeprobe(t), "--db", c.probeDB("probe"), "show", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	f, err := facts.Decode(strings.NewReader(r.stdout))
	require.NoError(t, err)
	assert.Equal(t, class, facts.Class(f))

	// Publishing again changes nothing.
	r = c.run(t, "", "/", nil, nodeprobe(t), "--db", c.probeDB("probe"), "--dmtcp-prefix", filepath.Dir(inst.Bin), "publish")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, fmt.Sprintf("node %s: class %s already published as feature dmtcp_%s\n", n.Name, class, class), r.stdout)

	// A regular user may not publish.
	r = c.run(t, testUser, "/tmp", nil, nodeprobe(t), "--db", "/tmp/sdmtcp-probe-user.db", "publish")
	assert.Equal(t, 1, r.code)
	assert.Regexp(t, `slurm_update error: (Invalid user id|Access/permission denied)`, r.stderr)

	r = c.run(t, "", "/", nil, nodeprobe(t), "map")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, fmt.Sprintf("class %s (feature dmtcp_%s): 1 node(s): %s\n", class, class, n.Name))
	r = c.run(t, "", "/", nil, nodeprobe(t), "map", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var m slurm.Map
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &m))
	require.Len(t, m.Group, 1)
	assert.Equal(t, []string{n.Name}, m.Group[0].Nodes)
}

// fakeNodeDB records this node's real facts as they would be on an older CPU: without
// the newest of its vector instruction sets (avx2, else the last one it has). Kernel, vDSO
// and glibc stay this node's, so the agent trusts the cache (facts.Quick); the class
// differs.
func (c *cluster) fakeNodeDB(t *testing.T, dmtcpBin string) (string, facts.Facts, string) {
	t.Helper()
	f, err := facts.Collect(facts.Options{DMTCPPrefix: filepath.Dir(dmtcpBin)})
	require.NoError(t, err)
	require.NotEmpty(t, f.ISAFeatures)
	drop := f.ISAFeatures[len(f.ISAFeatures)-1]
	if slices.Contains(f.ISAFeatures, "avx2") {
		drop = "avx2"
	}
	without := func(list []string) []string {
		return slices.DeleteFunc(slices.Clone(list), func(x string) bool { return x == drop })
	}
	f.ISAFeatures, f.FeatureFamilies = without(f.ISAFeatures), without(f.FeatureFamilies)
	if drop == "avx2" && f.X86Level > 2 {
		f.X86Level = 2
	}
	path := c.probeDB("probe-fake")
	_ = os.Remove(path)
	db, err := cache.Open(path)
	require.NoError(t, err)
	_, err = db.Record(f, time.Now())
	require.NoError(t, err)
	require.NoError(t, db.Close())
	return path, f, drop
}

// The whole path on the real cluster: a checkpoint taken here; the node "changes" (the
// agent reads facts of an older CPU); the requeued job is not restored but sent back to
// the queue constrained to the checkpoint's class, with the reason in its error file; on a
// node of that class (this one, its facts back) it restores with real DMTCP and completes.
func TestIncompatibleNodeRequeuesToCheckpointClass(t *testing.T) {
	c := newCluster(t)
	inst := needDMTCP(t)
	class := c.publish(t, inst.Bin)
	realDB := c.probeDB("probe")
	fakeDB, fake, dropped := c.fakeNodeDB(t, inst.Bin)
	c.withPolicy(t, "nodeprobe_cache="+realDB)

	dir := workdir(t)
	script := writeScript(t, dir, "counter.sh", fmt.Sprintf(counterEvery, 60, "0.2"))
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "--dmtcp", "-o", out, "-e", errf, script)
	waitFile(t, out, "count 10\n", 90*time.Second)
	r := c.run(t, "", "/", nil, "scontrol", "requeuehold", id)
	require.Equal(t, 0, r.code, r.stderr)
	c.waitState(t, id, 30*time.Second, "PENDING")
	waitFile(t, errf, "slurm-dmtcp: checkpoint (signal) generation 1", 30*time.Second)

	stepDir := filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "batch")
	m, err := manifest.Read(filepath.Join(stepDir, "gen-000001"))
	require.NoError(t, err)
	require.NotEmpty(t, m.NodeFacts, "the manifest carries the node's facts")
	ckpt, err := facts.Decode(strings.NewReader(string(m.NodeFacts)))
	require.NoError(t, err)
	assert.Equal(t, class, facts.Class(ckpt), "the checkpoint's class is the published one")

	// This node now looks different to the agent.
	c.setPolicy(t, "nodeprobe_cache="+fakeDB)
	c.run(t, "", "/", nil, "scontrol", "release", id)
	c.startOnce(t, id, 1)
	var job string
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		r = c.run(t, "", "/", nil, "scontrol", "show", "job", "-o", id)
		if c.job(t, id).Restarts >= 2 && strings.Contains(r.stdout, "JobState=PENDING") {
			job = r.stdout
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	require.NotEmpty(t, job, "the job was not sent back to the queue: %s", r.stdout)
	assert.Contains(t, job, " Features=dmtcp_"+class+" ", "constrained to the checkpoint's class")
	e := waitFile(t, errf, "cannot be restored on this node", 30*time.Second)
	t.Logf("the job's error output after the refusal:\n%s", e)
	assert.Contains(t, e, fmt.Sprintf("checkpoint gen-000001 was taken on node %s (class %s)", ckpt.Hostname, class))
	assert.Contains(t, e, fmt.Sprintf("(class %s)", facts.Class(fake)))
	assert.Contains(t, e, "the node's CPU lacks instruction sets the checkpointed process may use ("+dropped+")")
	assert.Contains(t, e, "the job was requeued, constrained to nodes of the checkpoint's class (Features=dmtcp_"+class+")")
	logb, _ := os.ReadFile(filepath.Join(stepDir, "agent.log"))
	assert.Contains(t, string(logb), "checkpoint incompatible with this node: job requeued to compatible nodes")
	// Slurm's own tools say why the agent requeued it, and so does the job's history.
	assert.Regexp(t, `^slurm-dmtcp: gen=1 at=\S+ size=\S+ requeue=placement$`, c.comment(t, id))
	evs, _, err := history.Read(stepDir)
	require.NoError(t, err)
	require.NotEmpty(t, evs)
	last := evs[len(evs)-1]
	assert.Equal(t, history.KindRequeue, last.Kind)
	assert.Equal(t, history.WhyPlacement, last.Why)
	assert.Equal(t, 1, last.Generation)
	assert.Contains(t, last.Detail, "Features=dmtcp_"+class)

	// Back on a node of the checkpoint's class: restored by real DMTCP, to the end.
	c.setPolicy(t, "nodeprobe_cache="+realDB)
	c.startNow(t, id)
	j := c.waitDone(t, id, 120*time.Second)
	assert.Equal(t, "COMPLETED", j.State)
	b, _ := os.ReadFile(out)
	assert.Contains(t, string(b), "final 60\n")
	got := counts(string(b))
	for i := 1; i < len(got); i++ {
		assert.GreaterOrEqual(t, got[i], got[i-1], "count went back from %d to %d", got[i-1], got[i])
	}
	e2, _ := os.ReadFile(errf)
	assert.Contains(t, string(e2), "restoring generation 1")
	logb, _ = os.ReadFile(filepath.Join(stepDir, "agent.log"))
	assert.Contains(t, string(logb), "checkpoint compatible with this node")
	assert.Contains(t, string(logb), "source=\"cache "+realDB)
}

// on_incompatible=fail: the job fails at once with the reason, nothing restored or requeued.
func TestIncompatibleNodeFailsByPolicy(t *testing.T) {
	c := newCluster(t)
	inst := needDMTCP(t)
	class := c.publish(t, inst.Bin)
	realDB := c.probeDB("probe")
	fakeDB, _, _ := c.fakeNodeDB(t, inst.Bin)
	c.withPolicy(t, "nodeprobe_cache="+realDB+" on_incompatible=fail")

	dir := workdir(t)
	script := writeScript(t, dir, "counter.sh", fmt.Sprintf(counterEvery, 60, "0.2"))
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "--dmtcp", "-o", out, "-e", errf, script)
	waitFile(t, out, "count 5\n", 90*time.Second)
	r := c.run(t, "", "/", nil, "scontrol", "requeuehold", id)
	require.Equal(t, 0, r.code, r.stderr)
	c.waitState(t, id, 30*time.Second, "PENDING")
	waitFile(t, errf, "slurm-dmtcp: checkpoint (signal) generation 1", 30*time.Second)
	c.setPolicy(t, "nodeprobe_cache="+fakeDB+" on_incompatible=fail")
	c.run(t, "", "/", nil, "scontrol", "release", id)
	c.startOnce(t, id, 1)
	j := c.waitDone(t, id, 90*time.Second)
	assert.Equal(t, "FAILED", j.State)
	assert.Equal(t, "125:0", j.ExitCode)
	assert.Equal(t, 1, j.Restarts, "not requeued again")
	e, _ := os.ReadFile(errf)
	assert.Contains(t, string(e), "cannot be restored on this node")
	assert.Contains(t, string(e), "Nothing was restored and the job fails (plugstack.conf on_incompatible=fail)")
	assert.Contains(t, string(e), "for a node with feature dmtcp_"+class)
}

// No node publishes the checkpoint's class: Slurm refuses the constraint, so the job stays
// held (it cannot start again on an incompatible node) and the message says what to run.
// Running exactly that, as the job's user, once the class is published, restores the job.
func TestIncompatibleNodeHeldWhenNoNodeHasTheClass(t *testing.T) {
	c := newCluster(t)
	inst := needDMTCP(t)
	class := c.publish(t, inst.Bin)
	realDB := c.probeDB("probe")
	fakeDB, _, _ := c.fakeNodeDB(t, inst.Bin)
	c.withPolicy(t, "nodeprobe_cache="+realDB)
	t.Cleanup(func() { c.publish(t, inst.Bin) })

	dir := workdir(t)
	script := writeScript(t, dir, "counter.sh", fmt.Sprintf(counterEvery, 40, "0.2"))
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "--dmtcp", "-o", out, "-e", errf, script)
	waitFile(t, out, "count 5\n", 90*time.Second)
	r := c.run(t, "", "/", nil, "scontrol", "requeuehold", id)
	require.Equal(t, 0, r.code, r.stderr)
	c.waitState(t, id, 30*time.Second, "PENDING")
	waitFile(t, errf, "slurm-dmtcp: checkpoint (signal) generation 1", 30*time.Second)

	n := c.node(t)
	r = c.run(t, "", "/", nil, "scontrol", "update", "NodeName="+n.Name, "AvailableFeatures=", "ActiveFeatures=")
	require.Equal(t, 0, r.code, r.stderr)
	c.setPolicy(t, "nodeprobe_cache="+fakeDB)
	c.run(t, "", "/", nil, "scontrol", "release", id)
	c.startOnce(t, id, 1)
	e := waitFile(t, errf, "the job was requeued and is held", 90*time.Second)
	t.Logf("the job's error output:\n%s", e)
	assert.Contains(t, e, "no node publishes the checkpoint's class (feature dmtcp_"+class+")")
	assert.Contains(t, e, fmt.Sprintf("publish on nodes of that class: scontrol update JobId=%s Features=dmtcp_%s; scontrol release %s", id, class, id))
	j := c.waitState(t, id, 30*time.Second, "PENDING")
	assert.Equal(t, 2, j.Restarts)
	r = c.run(t, "", "/", nil, "scontrol", "show", "job", "-o", id)
	assert.Regexp(t, `Reason=(JobHeldUser|job_requeued_in_held_state)`, r.stdout)
	time.Sleep(3 * time.Second)
	assert.Equal(t, "PENDING", c.job(t, id).State, "held: it does not start again on its own")

	// What the message says, once a node of the class is there again.
	c.publish(t, inst.Bin)
	c.setPolicy(t, "nodeprobe_cache="+realDB)
	r = c.run(t, testUser, "/tmp", nil, "scontrol", "update", "JobId="+id, "Features=dmtcp_"+class)
	require.Equal(t, 0, r.code, r.stderr)
	r = c.run(t, testUser, "/tmp", nil, "scontrol", "release", id)
	require.Equal(t, 0, r.code, r.stderr)
	c.startNow(t, id)
	j = c.waitDone(t, id, 120*time.Second)
	assert.Equal(t, "COMPLETED", j.State)
	b, _ := os.ReadFile(out)
	assert.Contains(t, string(b), "final 40\n")
	e2, _ := os.ReadFile(errf)
	assert.Contains(t, string(e2), "restart 2: restoring generation 1", "the refused run did not count: requeuehold, then release")
}

// A job that already required the checkpoint's class lands on a node that publishes it but
// whose facts differ (the node changed and nobody published again): requeueing it would
// bring it back to the same node for ever, so it is held with the reason.
func TestStaleClassFeatureHoldsTheJob(t *testing.T) {
	c := newCluster(t)
	inst := needDMTCP(t)
	class := c.publish(t, inst.Bin)
	realDB := c.probeDB("probe")
	fakeDB, _, _ := c.fakeNodeDB(t, inst.Bin)
	c.withPolicy(t, "nodeprobe_cache="+realDB)

	dir := workdir(t)
	script := writeScript(t, dir, "counter.sh", fmt.Sprintf(counterEvery, 40, "0.2"))
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "--dmtcp", "--constraint=dmtcp_"+class, "-o", out, "-e", errf, script)
	waitFile(t, out, "count 5\n", 90*time.Second)
	r := c.run(t, "", "/", nil, "scontrol", "requeuehold", id)
	require.Equal(t, 0, r.code, r.stderr)
	c.waitState(t, id, 30*time.Second, "PENDING")
	waitFile(t, errf, "slurm-dmtcp: checkpoint (signal) generation 1", 30*time.Second)
	c.setPolicy(t, "nodeprobe_cache="+fakeDB)
	c.run(t, "", "/", nil, "scontrol", "release", id)
	c.startOnce(t, id, 1)
	e := waitFile(t, errf, "the job was requeued and is held", 90*time.Second)
	assert.Contains(t, e, fmt.Sprintf("the job already required feature dmtcp_%s, yet this node, which publishes it, differs: its published class is stale", class))
	assert.Contains(t, e, "scontrol release "+id)
	j := c.waitState(t, id, 30*time.Second, "PENDING")
	assert.Equal(t, 2, j.Restarts)
	r = c.run(t, "", "/", nil, "scontrol", "show", "job", "-o", id)
	assert.Contains(t, r.stdout, " Features=dmtcp_"+class+" ", "the constraint is left as it was")
	time.Sleep(3 * time.Second)
	assert.Equal(t, "PENDING", c.job(t, id).State, "held: it does not come back to this node on its own")
}

// serve --publish (what the systemd unit's publish.conf runs) puts the class on the node
// after its first probe, publishes it again when an administrator's change removed it, and
// stops cleanly on SIGTERM.
func TestServePublishesOnTheCluster(t *testing.T) {
	c := newCluster(t)
	inst := needDMTCP(t)
	n := c.node(t)
	r := c.run(t, "", "/", nil, "scontrol", "update", "NodeName="+n.Name, "AvailableFeatures=sdmtcp_keep", "ActiveFeatures=sdmtcp_keep")
	require.Equal(t, 0, r.code, r.stderr)
	t.Cleanup(func() { c.publish(t, inst.Bin) })

	var logs syncBuf
	cmd := exec.Command(nodeprobe(t), "--db", c.probeDB("probe"), "--dmtcp-prefix", filepath.Dir(inst.Bin), "serve", "--every", "2s", "--publish")
	cmd.Env = append(os.Environ(), "SLURM_CONF="+c.conf, "NOTIFY_SOCKET=", "JOURNAL_STREAM=")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	published := func() bool {
		nn := c.node(t)
		for _, f := range nn.ActiveFeatures {
			if slurm.ClassOf(f) != "" {
				return slices.Contains(nn.ActiveFeatures, "sdmtcp_keep")
			}
		}
		return false
	}
	require.Eventually(t, published, 20*time.Second, 200*time.Millisecond, "serve did not publish: %s", logs.String())
	assert.Contains(t, logs.String(), "class published as a Slurm node feature")

	r = c.run(t, "", "/", nil, "scontrol", "update", "NodeName="+n.Name, "AvailableFeatures=sdmtcp_keep", "ActiveFeatures=sdmtcp_keep")
	require.Equal(t, 0, r.code, r.stderr)
	require.Eventually(t, published, 20*time.Second, 200*time.Millisecond, "serve did not publish again: %s", logs.String())

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-done:
		assert.NoError(t, err, "exit status after SIGTERM; log:\n%s", logs.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("serve did not stop on SIGTERM; log:\n%s", logs.String())
	}
}

// syncBuf collects a child's output while the test reads it.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
