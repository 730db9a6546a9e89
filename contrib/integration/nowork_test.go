//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// counterEvery is counterScript with a chosen pause between counts.
const counterEvery = `#!/bin/bash
#SBATCH --open-mode=append
i=0
while [ $i -lt %d ]; do i=$((i+1)); echo "count $i"; sleep %s; done
echo "final $i"
`

// assertCountedTo checks that the counter ended at exactly n and never started from the
// top again (a restore may replay the few counts taken after the checkpoint it restores).
func assertCountedTo(t *testing.T, out string, n int) {
	t.Helper()
	assert.Contains(t, out, fmt.Sprintf("final %d\n", n), "the counter ended at the uninterrupted result")
	got := counts(out)
	require.NotEmpty(t, got)
	assert.Equal(t, n, got[len(got)-1])
	ones := 0
	for _, v := range got {
		if v == 1 {
			ones++
		}
	}
	assert.Equal(t, 1, ones, "the script started from the top again: %v", got)
}

// manifestReasons returns the reason of every generation of a step, oldest first.
func manifestReasons(t *testing.T, stepDir string) []string {
	t.Helper()
	gens, _ := filepath.Glob(stepDir + "/gen-*")
	var reasons []string
	for _, g := range gens {
		b, err := os.ReadFile(g + "/MANIFEST.json")
		require.NoError(t, err)
		i := strings.Index(string(b), `"reason": "`)
		require.GreaterOrEqual(t, i, 0, "%s has no reason", g)
		rest := string(b)[i+len(`"reason": "`):]
		reasons = append(reasons, rest[:strings.IndexByte(rest, '"')])
	}
	return reasons
}

// A job that asked to continue past its one-minute limit checkpoints 30 s before it,
// requeues itself and resumes; the counter ends as an uninterrupted run would.
func TestTimeLimitContinuation(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	dir := workdir(t)
	script := writeScript(t, dir, "counter.sh", fmt.Sprintf(counterEvery, 100, "0.5"))
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "-t", "1", "--dmtcp-lead=30s", "--dmtcp-continue=3", "-o", out, "-e", errf, script)

	waitFile(t, errf, "job requeued to continue (run 1 done, at most 3 runs)", 90*time.Second)
	c.waitState(t, id, 40*time.Second, "PENDING")
	c.startNow(t, id)
	j := c.waitDone(t, id, 150*time.Second)
	assert.Equal(t, "COMPLETED", j.State, "the job finished within its runs instead of timing out")
	assert.GreaterOrEqual(t, j.Restarts, 1)
	b, _ := os.ReadFile(out)
	assertCountedTo(t, string(b), 100)
	e, _ := os.ReadFile(errf)
	assert.Regexp(t, `slurm-dmtcp: checkpoint \(time-limit\) generation 1: `, string(e))
	assert.Regexp(t, `slurm-dmtcp: time limit in \d+s: checkpoint taken; job requeued`, string(e))
	assert.Contains(t, string(e), "slurm-dmtcp: restart 1: restoring generation 1")
	assert.NotContains(t, string(e), "checkpoint (signal)", "the SIGTERM of our own requeue takes no second checkpoint")
	stepDir := filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "batch")
	reasons := manifestReasons(t, stepDir)
	require.NotEmpty(t, reasons)
	assert.Equal(t, "time-limit", reasons[0])
	ledger, err := os.ReadFile(stepDir + "/continuation")
	require.NoError(t, err)
	assert.Contains(t, string(ledger), "runs=1\n")
}

// A job on the preemptible partition is preempted by a high-priority job, checkpointed at
// the end of the grace time, requeued, and resumes once the node is free again.
func TestPreemptionResumes(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	dir := workdir(t)
	script := writeScript(t, dir, "counter.sh", fmt.Sprintf(counterEvery, 60, "0.5"))
	out, errf := dir+"/out", dir+"/err"
	low := c.sbatch(t, dir, "-p", "low", "-c", "2", "--dmtcp", "-o", out, "-e", errf, script)
	waitFile(t, out, "count 5\n", 60*time.Second)
	high := c.sbatch(t, dir, "-p", "high", "-c", "2", "-o", dir+"/high.out", "--wrap", "echo high ran; sleep 3")

	c.waitState(t, low, 60*time.Second, "PENDING")
	hj := c.waitDone(t, high, 60*time.Second)
	assert.Equal(t, "COMPLETED", hj.State)
	c.startNow(t, low)
	j := c.waitDone(t, low, 120*time.Second)
	assert.Equal(t, "COMPLETED", j.State)
	assert.Equal(t, 1, j.Restarts)
	b, _ := os.ReadFile(out)
	assertCountedTo(t, string(b), 60)
	e, _ := os.ReadFile(errf)
	assert.Contains(t, string(e), "slurm-dmtcp: checkpoint (signal) generation 1: ")
	assert.Contains(t, string(e), "slurm-dmtcp: restart 1: restoring generation 1")
	h, _ := os.ReadFile(dir + "/high.out")
	assert.Equal(t, "high ran\n", string(h))
}

// descendants returns pid and every process below it.
func descendants(t *testing.T, pid int) []int {
	t.Helper()
	out, err := exec.Command("ps", "-eo", "pid=,ppid=").Output()
	require.NoError(t, err)
	children := map[int][]int{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		p, _ := strconv.Atoi(f[0])
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], p)
	}
	all := []int{pid}
	for i := 0; i < len(all); i++ {
		all = append(all, children[all[i]]...)
	}
	return all
}

// stepdPid finds the slurmstepd of the job's batch step.
func stepdPid(t *testing.T, id string) int {
	t.Helper()
	out, _ := exec.Command("pgrep", "-f", `slurmstepd: \[`+id+`\.batch\]`).Output()
	f := strings.Fields(string(out))
	require.NotEmpty(t, f, "no slurmstepd for job %s", id)
	pid, err := strconv.Atoi(f[0])
	require.NoError(t, err)
	return pid
}

// Node loss: the batch step's slurmstepd, the agent, the coordinator and the application
// are all killed at once with SIGKILL, with no chance to checkpoint. Requeued, the job
// resumes from its newest periodic checkpoint.
func TestNodeLossResumesFromPeriodicCheckpoint(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	c.withPolicy(t, "min_interval=1")
	dir := workdir(t)
	script := writeScript(t, dir, "counter.sh", fmt.Sprintf(counterEvery, 50, "0.5"))
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "--dmtcp-interval=3s", "-o", out, "-e", errf, script)
	waitFile(t, errf, "generation 2:", 90*time.Second)

	for _, pid := range descendants(t, stepdPid(t, id)) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	b, _ := os.ReadFile(out)
	before := counts(string(b))
	require.NotEmpty(t, before)
	r := c.run(t, "", "/", nil, "scontrol", "requeue", id)
	require.Equal(t, 0, r.code, r.stderr)
	c.waitState(t, id, 60*time.Second, "PENDING")
	c.startNow(t, id)
	j := c.waitDone(t, id, 120*time.Second)
	assert.Equal(t, "COMPLETED", j.State)
	b, _ = os.ReadFile(out)
	assertCountedTo(t, string(b), 50)
	e, _ := os.ReadFile(errf)
	assert.Regexp(t, `slurm-dmtcp: restart 1: restoring generation \d+ \(checkpoint of [^,]+, periodic\)`, string(e))
	assert.NotContains(t, string(e), "checkpoint (signal)", "nothing could checkpoint when the node died")
	after := counts(string(b))[len(before):]
	require.NotEmpty(t, after)
	assert.Greater(t, after[0], 1, "resumed from a checkpoint, not from the top")
	assert.LessOrEqual(t, after[0], before[len(before)-1]+1, "resumed no later than where the node died")
}
