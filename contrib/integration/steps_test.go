//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ringProgram: the tasks of one step count together over TCP. Rank 0 listens and publishes
// its address in a file (the folder is shared by the nodes); the other ranks connect to it.
// Each round every other rank sends rank*round, rank 0 adds them and the round to the total
// and sends the total back; the others fold the totals into a checksum.
const ringProgram = `#!/usr/bin/env python3
import os, socket, sys, time

rank, n = int(os.environ["SLURM_PROCID"]), int(os.environ["SLURM_NTASKS"])
rounds, rv, pause = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])

def own_ip():
    # The node's address from the routing table (no socket: DMTCP does not checkpoint
    # datagram sockets).
    last = None
    for line in open("/proc/net/fib_trie"):
        f = line.split()
        if f[:1] == ["|--"]:
            last = f[1]
        elif "/32 host LOCAL" in line and last and not last.startswith("127."):
            return last
    return "127.0.0.1"

if rank == 0:
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", 0))
    ls.listen(n)
    with open(rv + ".tmp", "w") as f:
        f.write("%s %d\n" % (own_ip(), ls.getsockname()[1]))
    os.rename(rv + ".tmp", rv)
    peers = {}
    while len(peers) < n - 1:
        c, _ = ls.accept()
        f = c.makefile("rw")
        peers[int(f.readline())] = f
    total = 0
    for k in range(1, rounds + 1):
        for r in sorted(peers):
            total += int(peers[r].readline())
        total += k
        for r in sorted(peers):
            peers[r].write("%d\n" % total)
            peers[r].flush()
        print("round %d total %d" % (k, total), flush=True)
        time.sleep(pause)
    print("rank 0 final %d on %s" % (total, socket.gethostname()), flush=True)
else:
    while not os.path.exists(rv):
        time.sleep(0.05)
    host, port = open(rv).read().split()
    s = socket.create_connection((host, int(port)))
    f = s.makefile("rw")
    f.write("%d\n" % rank)
    f.flush()
    acc = 0
    for k in range(1, rounds + 1):
        f.write("%d\n" % (rank * k))
        f.flush()
        acc = (acc * 31 + int(f.readline()) + rank) % 1000000007
    print("rank %d final %d on %s" % (rank, acc, socket.gethostname()), flush=True)
`

// ringExpected is what ringProgram prints at the end, uninterrupted: rank -> final value.
func ringExpected(tasks, rounds int) map[int]int64 {
	out := map[int]int64{}
	var total int64
	acc := make([]int64, tasks)
	for k := int64(1); k <= int64(rounds); k++ {
		total += k
		for r := int64(1); r < int64(tasks); r++ {
			total += r * k
		}
		for r := 1; r < tasks; r++ {
			acc[r] = (acc[r]*31 + total + int64(r)) % 1000000007
		}
	}
	out[0] = total
	for r := 1; r < tasks; r++ {
		out[r] = acc[r]
	}
	return out
}

// soloProgram: the same output as ringProgram, each rank counting alone (no connection
// between the tasks): DMTCP 5.0 as released checkpoints and restores it across nodes.
const soloProgram = `#!/usr/bin/env python3
import os, socket, sys, time

rank = int(os.environ["SLURM_PROCID"])
rounds, pause = int(sys.argv[1]), float(sys.argv[3])
acc = 0
for k in range(1, rounds + 1):
    if rank == 0:
        acc += k
        print("round %d total %d" % (k, acc), flush=True)
    else:
        acc = (acc * 31 + k + rank) % 1000000007
    time.sleep(pause)
print("rank %d final %d on %s" % (rank, acc, socket.gethostname()), flush=True)
`

// soloExpected is what every rank of soloProgram prints last.
func soloExpected(tasks, rounds int) map[int]int64 {
	out := map[int]int64{0: int64(rounds) * int64(rounds+1) / 2}
	for r := 1; r < tasks; r++ {
		var acc int64
		for k := int64(1); k <= int64(rounds); k++ {
			acc = (acc*31 + k + int64(r)) % 1000000007
		}
		out[r] = acc
	}
	return out
}

// rankFinals reads the "rank R final V on HOST" lines of the programs above: each rank's
// final value and host. A rank that ends twice (its processes restored twice) fails the test.
func rankFinals(t *testing.T, out string) (map[int]int64, map[int]string) {
	t.Helper()
	finals, hosts := map[int]int64{}, map[int]string{}
	for _, m := range regexp.MustCompile(`(?m)^rank (\d+) final (\d+) on (\S+)$`).FindAllStringSubmatch(out, -1) {
		rk, _ := strconv.Atoi(m[1])
		v, _ := strconv.ParseInt(m[2], 10, 64)
		_, twice := finals[rk]
		assert.False(t, twice, "rank %d ended twice: its processes were restored twice", rk)
		finals[rk], hosts[rk] = v, m[3]
	}
	return finals, hosts
}

// clusterNodes lists the cluster's nodes.
func (c *cluster) nodes(t *testing.T) []string {
	t.Helper()
	r := c.run(t, "", "/", nil, "sinfo", "-h", "-N", "-o", "%N")
	require.Equal(t, 0, r.code, r.stderr)
	seen := map[string]bool{}
	var out []string
	for _, n := range strings.Fields(r.stdout) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// A step across two nodes (srun -N2 -n4 --dmtcp in a batch job that is not itself under
// DMTCP), its tasks each counting alone: requeued mid-way, with the node of its first ranks
// drained, it resumes on other nodes, each rank from its own images under one new
// coordinator, and ends with the exact result of an uninterrupted run.
func TestStepAcrossNodesResumesOnOtherNodes(t *testing.T) {
	stepAcrossNodes(t, soloProgram, soloExpected)
}

// The same with tasks that exchange data over TCP between the nodes. DMTCP 5.0 as released
// cannot checkpoint those (contrib/dmtcp/README.md): the test runs only where the site says
// its DMTCP has both fixes.
func TestStepAcrossNodesTalkingOverTCP(t *testing.T) {
	if os.Getenv("SDMTCP_DMTCP_TCP_ACROSS_NODES") != "1" {
		t.Skip("SKIP: DMTCP 5.0 as released hangs checkpointing TCP between nodes (contrib/dmtcp/README.md); set SDMTCP_DMTCP_TCP_ACROSS_NODES=1 with a DMTCP that has both fixes")
	}
	stepAcrossNodes(t, ringProgram, ringExpected)
}

func stepAcrossNodes(t *testing.T, program string, expected func(tasks, rounds int) map[int]int64) {
	c := newCluster(t)
	needDMTCP(t)
	nodes := c.nodes(t)
	if len(nodes) < 2 {
		t.Skipf("SKIP: needs a cluster of 2 or more nodes (this one has %d): make cluster-up NODES=3", len(nodes))
	}
	const tasks, rounds = 4, 60
	dir := workdir(t)
	writeScript(t, dir, "ring.py", program)
	script := writeScript(t, dir, "job.sh", fmt.Sprintf(`#!/bin/bash
#SBATCH -N2 --ntasks-per-node=2 --open-mode=append --requeue
echo "batch run ${SLURM_RESTART_COUNT:-0} on $(hostname)"
srun -N2 -n%d --dmtcp ./ring.py %d %s/rv.$SLURM_JOB_ID.${SLURM_RESTART_COUNT:-0} 0.15
echo "step exit $?"
`, tasks, rounds, dir))
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "-o", out, "-e", errf, script)

	so := waitFile(t, out, "round 12 ", 90*time.Second)
	m := regexp.MustCompile(`batch run 0 on (\S+)`).FindStringSubmatch(so)
	require.NotNil(t, m, "the batch script names its node")
	// The batch script's node is node 0 of the step (ranks 0 and 1, the coordinator).
	firstNode := m[1]
	r := c.run(t, "", "/", nil, "scontrol", "requeue", id)
	require.Equal(t, 0, r.code, r.stderr)
	// Drained, so that the next run lands on other nodes when the cluster has a third one.
	if len(nodes) >= 3 {
		c.run(t, "", "/", nil, "scontrol", "update", "nodename="+firstNode, "state=drain", "reason=slurm-dmtcp test")
		t.Cleanup(func() { c.run(t, "", "/", nil, "scontrol", "update", "nodename="+firstNode, "state=resume") })
	}
	c.waitState(t, id, 40*time.Second, "PENDING")
	c.startNow(t, id)
	j := c.waitDone(t, id, 180*time.Second)
	b, _ := os.ReadFile(out)
	e, _ := os.ReadFile(errf)
	jobDir := filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id)
	if t.Failed() || j.State != "COMPLETED" {
		for _, l := range []string{"agent.log", "agent.node-1.log"} {
			lb, _ := os.ReadFile(filepath.Join(jobDir, "step-0", l))
			t.Logf("%s:\n%s", l, lb)
		}
	}
	t.Logf("first run's batch node %s; output:\n%s\nerrors:\n%s", firstNode, b, e)
	require.Equal(t, "COMPLETED", j.State, "job state")
	assert.Equal(t, 1, j.Restarts)

	// Every rank ends with the result of an uninterrupted run.
	finals, hosts := rankFinals(t, string(b))
	assert.Equal(t, expected(tasks, rounds), finals, "final values of every rank")
	// Rounds were neither repeated nor restarted from the top.
	var seen []int
	for _, m := range regexp.MustCompile(`(?m)^round (\d+) total`).FindAllStringSubmatch(string(b), -1) {
		k, _ := strconv.Atoi(m[1])
		seen = append(seen, k)
	}
	require.NotEmpty(t, seen)
	for i := 1; i < len(seen); i++ {
		assert.Greater(t, seen[i], seen[i-1], "round %d printed after round %d: work repeated", seen[i], seen[i-1])
	}
	assert.Equal(t, 1, seen[0])
	assert.Equal(t, rounds, seen[len(seen)-1])
	assert.Contains(t, string(b), "batch run 1 on ")
	assert.Contains(t, string(b), "step exit 0\n")
	assert.Contains(t, string(e), "slurm-dmtcp: restart 1: restoring generation 1")

	// One generation for the whole step, images grouped by rank and node.
	mb, err := os.ReadFile(filepath.Join(jobDir, "step-0", "gen-000001", "MANIFEST.json"))
	require.NoError(t, err)
	var man struct {
		Version int `json:"version"`
		Ranks   []struct {
			Rank   int      `json:"rank"`
			Node   string   `json:"node"`
			Images []string `json:"images"`
		} `json:"ranks"`
	}
	require.NoError(t, json.Unmarshal(mb, &man))
	assert.Equal(t, 2, man.Version)
	require.Len(t, man.Ranks, tasks)
	before := map[int]string{}
	for i, rk := range man.Ranks {
		assert.Equal(t, i, rk.Rank)
		assert.NotEmpty(t, rk.Images)
		before[rk.Rank] = rk.Node
	}
	t.Logf("ranks' nodes at the checkpoint %v, at the end %v", before, hosts)
	assert.NotEqual(t, before[0], before[tasks-1], "the checkpoint spans two nodes")
	if len(nodes) >= 3 {
		// The ranks of the drained node ran elsewhere; node 0 of the step (and its
		// coordinator) moved with them.
		for rk := 0; rk < tasks; rk++ {
			if before[rk] == firstNode {
				assert.NotEqual(t, firstNode, hosts[rk], "rank %d restored on another node", rk)
			}
		}
		assert.Equal(t, firstNode, before[0], "rank 0 ran on the batch script's node")
	}
}

// A node of a step across nodes is lost mid-way: every process of the node (its slurmd, the
// step's tasks and agent there) is killed at once, and the node is marked DOWN, as
// slurmctld does when a node stops answering. Slurm requeues the job; it resumes from the
// newest periodic checkpoint on the nodes left, every rank from its own images, and ends with
// the exact result of an uninterrupted run. The checkpoint the node left tries on SIGTERM
// misses the lost node's ranks: it is never committed.
func TestStepAcrossNodesSurvivesNodeLoss(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	nodes := c.nodes(t)
	if len(nodes) < 3 {
		t.Skipf("SKIP: needs a cluster of 3 or more nodes, one to lose and two to resume on (this one has %d): make cluster-up NODES=3", len(nodes))
	}
	c.withPolicy(t, "min_interval=1")
	const tasks, rounds = 4, 150
	dir := workdir(t)
	writeScript(t, dir, "solo.py", soloProgram)
	script := writeScript(t, dir, "job.sh", fmt.Sprintf(`#!/bin/bash
#SBATCH -N2 --ntasks-per-node=2 --open-mode=append --requeue
echo "batch run ${SLURM_RESTART_COUNT:-0} on $(hostname)"
srun -N2 -n%d --dmtcp --dmtcp-interval=3s ./solo.py %d unused 0.15
echo "step exit $?"
`, tasks, rounds))
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "-o", out, "-e", errf, script)

	waitFile(t, errf, "checkpoint (periodic) generation 2:", 120*time.Second)
	so, _ := os.ReadFile(out)
	m := regexp.MustCompile(`batch run 0 on (\S+)`).FindStringSubmatch(string(so))
	require.NotNil(t, m, "the batch script names its node")
	var lost string
	for _, n := range c.jobNodes(t, id) {
		if n != m[1] {
			lost = n
		}
	}
	require.NotEmpty(t, lost, "the step's second node")
	c.loseNode(t, lost)
	c.waitState(t, id, 60*time.Second, "PENDING")
	c.startNow(t, id)
	j := c.waitDone(t, id, 180*time.Second)
	b, _ := os.ReadFile(out)
	e, _ := os.ReadFile(errf)
	t.Logf("lost node %s; output:\n%s\nerrors:\n%s", lost, b, e)
	require.Equal(t, "COMPLETED", j.State, "job state")
	assert.GreaterOrEqual(t, j.Restarts, 1)

	finals, hosts := rankFinals(t, string(b))
	for rk, h := range hosts {
		assert.NotEqual(t, lost, h, "rank %d ended on the lost node", rk)
	}
	assert.Equal(t, soloExpected(tasks, rounds), finals, "final values of every rank")
	assert.Regexp(t, `slurm-dmtcp: restart 1: restoring generation \d+ \(checkpoint of [^,]+, periodic\)`, string(e))
	assert.NotContains(t, string(e), "checkpoint (signal) generation", "a checkpoint without the lost node's ranks was committed")
	assert.Contains(t, string(b), "step exit 0\n")
}

// jobNodes is the nodes a running job holds.
func (c *cluster) jobNodes(t *testing.T, id string) []string {
	t.Helper()
	r := c.run(t, "", "/", nil, "squeue", "-h", "-j", id, "-o", "%N")
	require.Equal(t, 0, r.code, r.stderr)
	r = c.run(t, "", "/", nil, "scontrol", "show", "hostnames", strings.TrimSpace(r.stdout))
	require.Equal(t, 0, r.code, r.stderr)
	return strings.Fields(r.stdout)
}

// loseNode kills every process of a node of the multi-node cluster (all of its network
// namespace: slurmd, slurmstepd, tasks, agents) and marks it DOWN; at the end of the test the
// node comes back (cluster-up.sh starts its slurmd again).
func (c *cluster) loseNode(t *testing.T, name string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, "run", "nodes"))
	require.NoError(t, err, "the multi-node cluster's node list")
	ns := ""
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == name {
			ns = f[1]
		}
	}
	require.NotEmpty(t, ns, "node %s has no network namespace in %s/run/nodes", name, c.dir)
	t.Cleanup(func() {
		c.run(t, "", "/", nil, "scontrol", "update", "nodename="+name, "state=resume")
		up := exec.Command("../../contrib/cluster/cluster-up.sh")
		up.Env = os.Environ()
		if o, err := up.CombinedOutput(); err != nil {
			t.Logf("node %s did not come back: %v: %s", name, err, o)
		}
	})
	for round := 0; round < 5; round++ { // what was forking in the meantime
		pids, err := exec.Command("ip", "netns", "pids", ns).Output()
		require.NoError(t, err)
		if len(strings.Fields(string(pids))) == 0 {
			break
		}
		for _, p := range strings.Fields(string(pids)) {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := c.run(t, "", "/", nil, "scontrol", "update", "nodename="+name, "state=down", "reason=slurm-dmtcp test: node lost")
	require.Equal(t, 0, r.code, r.stderr)
}

// A step of two tasks on one node (srun -n2 --dmtcp in a batch job not under DMTCP),
// requeued mid-way: each task is restored from its own images (rank-<R>/), not every task
// from all of them, and every rank ends with the result of an uninterrupted run.
func TestStepOfTwoTasksOnOneNodeResumes(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	const tasks, rounds = 2, 60
	dir := workdir(t)
	writeScript(t, dir, "solo.py", soloProgram)
	script := writeScript(t, dir, "job.sh", fmt.Sprintf(`#!/bin/bash
#SBATCH -N1 -n%d --open-mode=append --requeue
srun -N1 -n%d --dmtcp ./solo.py %d unused 0.15
echo "step exit $?"
`, tasks, tasks, rounds))
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "-o", out, "-e", errf, script)
	waitFile(t, out, "round 12 ", 90*time.Second)
	c.requeue(t, id)
	j := c.waitDone(t, id, 120*time.Second)
	b, _ := os.ReadFile(out)
	e, _ := os.ReadFile(errf)
	require.Equal(t, "COMPLETED", j.State, "output:\n%s\nerrors:\n%s", b, e)
	finals, _ := rankFinals(t, string(b))
	assert.Equal(t, soloExpected(tasks, rounds), finals, "final values of every rank")
	assert.Contains(t, string(e), "slurm-dmtcp: restart 1: restoring generation 1")
	assert.Contains(t, string(b), "step exit 0\n")
	mb, err := os.ReadFile(filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "step-0", "gen-000001", "MANIFEST.json"))
	require.NoError(t, err)
	var man struct {
		Ranks []struct {
			Rank   int      `json:"rank"`
			Images []string `json:"images"`
		} `json:"ranks"`
	}
	require.NoError(t, json.Unmarshal(mb, &man))
	require.Len(t, man.Ranks, tasks)
	for i, rk := range man.Ranks {
		assert.Equal(t, i, rk.Rank)
		assert.Len(t, rk.Images, 1, "rank %d: the images of its own process", i)
	}
}

// A job submitted from inside a --dmtcp job inherits that job's SLURM_DMTCP_* and
// DMTCP_COORD_* variables. Without --dmtcp it must behave as without the plugin: the
// variables are gone from its batch script and its steps, and a step across nodes is not
// refused as "inside a --dmtcp batch job".
func TestSecurityStepAcrossNodesIgnoresStaleVariables(t *testing.T) {
	c := newCluster(t)
	nodes := len(c.nodes(t))
	for _, n := range []int{1, 2} {
		t.Run(fmt.Sprintf("step on %d nodes", n), func(t *testing.T) {
			if nodes < n {
				t.Skipf("SKIP: needs a cluster of %d or more nodes (this one has %d): make cluster-up NODES=3", n, nodes)
			}
			dir := workdir(t)
			script := writeScript(t, dir, "job.sh", fmt.Sprintf(`#!/bin/bash
#SBATCH -N%d
echo "batch ${SLURM_DMTCP_COORD_PORT:-none} ${DMTCP_COORD_PORT:-none} ${SLURM_DMTCP_JOB_ID:-none}"
echo "batch variables left: $(env | grep -cE '^(SLURM_DMTCP_|DMTCP_COORD_)')"
srun -N%d bash -c 'echo "task ${SLURM_DMTCP_COORD_PORT:-none} ${DMTCP_COORD_PORT:-none}"'
echo "step exit $?"
`, n, n))
			out := dir + "/out"
			// As sbatch inside a --dmtcp job would pass them on (job 12345 is not this one).
			id := c.sbatch(t, dir, "-o", out, "--export=ALL,SLURM_DMTCP_COORD_HOST=localhost,SLURM_DMTCP_COORD_PORT=7779,"+
				"DMTCP_COORD_PORT=7779,SLURM_DMTCP_JOB_ID=12345,SLURM_DMTCP_RESTORE_VERIFY=1,SLURM_DMTCP_SIGTERM=default", script)
			j := c.waitDone(t, id, 60*time.Second)
			b, _ := os.ReadFile(out)
			assert.Equal(t, "COMPLETED", j.State, "output:\n%s", b)
			assert.Contains(t, string(b), "batch none none none\n")
			assert.Contains(t, string(b), "batch variables left: 0\n", "every inherited variable removed:\n%s", b)
			assert.Equal(t, n, strings.Count(string(b), "task none none\n"), "every task without the variables:\n%s", b)
			assert.Contains(t, string(b), "step exit 0\n")
		})
	}
}
