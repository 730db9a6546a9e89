//go:build integration

package integration

import (
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

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/history"
)

// pyCounter prints like counterEvery without forking: DMTCP 5.0 itself sometimes exits 99
// when a checkpoint meets a fork of a restored shell (see docs/troubleshooting.md, known problems of DMTCP), and the
// time-limit, preemption and node-loss tests are about Slurm's signals, not about that.
const pyCounter = `#!/usr/bin/env python3
#SBATCH --open-mode=append
import time
i = 0
while i < %d:
    i += 1
    print("count", i, flush=True)
    time.sleep(%s)
print("final", i, flush=True)
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
	script := writeScript(t, dir, "counter.py", fmt.Sprintf(pyCounter, 100, "0.5"))
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "-t", "1", "--dmtcp-lead=30s", "--dmtcp-continue=3", "-o", out, "-e", errf, script)

	waitFile(t, errf, "job requeued to continue (run 1 done, at most 3 runs)", 90*time.Second)
	c.waitState(t, id, 40*time.Second, "PENDING")
	// The job's Comment says why it waits.
	c.waitComment(t, id, regexp.MustCompile(`^slurm-dmtcp: gen=2 at=\S+ size=\S+ requeue=continue$`), 15*time.Second)
	c.startNow(t, id)
	j := c.waitDone(t, id, 150*time.Second)
	assert.Equal(t, "COMPLETED", j.State, "the job finished within its runs instead of timing out")
	assert.GreaterOrEqual(t, j.Restarts, 1)
	b, _ := os.ReadFile(out)
	assertCountedTo(t, string(b), 100)
	e, _ := os.ReadFile(errf)
	assert.Regexp(t, `slurm-dmtcp: checkpoint \(time-limit\) generation 1: `, string(e))
	assert.Regexp(t, `slurm-dmtcp: time limit in \d+s: checkpoint taken; job requeued`, string(e))
	// The SIGTERM of the agent's own requeue checkpoints where the computation is then:
	// nothing it did after the checkpoint before the limit is run twice.
	assert.Regexp(t, `slurm-dmtcp: checkpoint \(signal\) generation 2: `, string(e))
	assert.Contains(t, string(e), "slurm-dmtcp: restart 1: restoring generation 2")
	stepDir := filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "batch")
	evs, _, err := history.Read(stepDir)
	require.NoError(t, err)
	var seq []string
	for _, e := range evs {
		seq = append(seq, e.Kind+":"+e.Reason+e.Why)
	}
	assert.Equal(t, []string{"checkpoint:time-limit", "requeue:continue", "checkpoint:signal", "restore:signal"}, seq[:min(4, len(seq))])
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
	script := writeScript(t, dir, "counter.py", fmt.Sprintf(pyCounter, 60, "0.5"))
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
	b, _ := os.ReadFile(out)
	e, _ := os.ReadFile(errf)
	assert.Contains(t, string(e), "slurm-dmtcp: checkpoint (signal) generation 1: ")
	assert.Contains(t, string(e), "slurm-dmtcp: restart 1: restoring generation 1")
	if c.requeuedAgainAfterGrace(t, low, j.Restarts) {
		// Slurm 24.05 and later: the restored run counted to the end, then Slurm ran the
		// script once more, from the top (grace_test.go).
		runs := countRuns(counts(string(b)))
		require.Len(t, runs, 2, "the restored run, then Slurm's run from the top:\n%s", lastLines(string(b), 20))
		assert.Empty(t, wholeCount(runs[0], 60), "the run restored after the preemption")
		assert.Empty(t, wholeCount(runs[1], 60), "Slurm's run once more")
		assert.Equal(t, 2, strings.Count(string(b), "final 60\n"))
		assert.Contains(t, string(e), "slurm-dmtcp: restart 2: this step finished in an earlier run; starting it again from the top")
	} else {
		assert.Equal(t, 1, j.Restarts)
		assertCountedTo(t, string(b), 60)
	}
	h, _ := os.ReadFile(dir + "/high.out")
	assert.Equal(t, "high ran\n", string(h))
}

// A --dmtcp step of a job that is not itself under DMTCP, preempted: Slurm signals the step
// at once but the batch script only when the grace time ends. The step is checkpointed and
// runs on (ending it would let the script end the job in its grace time: Slurm 22.05 does
// not requeue such a job, 24.05 and later run its script again from the top); at the end of
// the grace time the job is requeued, and its next run restores the step.
func TestPreemptedStepRunsOnThenResumes(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	const tasks, rounds = 2, 100
	dir := workdir(t)
	writeScript(t, dir, "solo.py", soloProgram)
	script := writeScript(t, dir, "job.sh", fmt.Sprintf(`#!/bin/bash
srun -n%d --dmtcp ./solo.py %d unused 0.4
echo "step exit $?"
`, tasks, rounds))
	out, errf := dir+"/out", dir+"/err"
	low := c.sbatch(t, dir, "-p", "low", "-n2", "--requeue", "--open-mode=append", "-o", out, "-e", errf, script)
	waitFile(t, out, "round 5 ", 60*time.Second)
	high := c.sbatch(t, dir, "-p", "high", "-c", "2", "-o", dir+"/high.out", "--wrap", "echo high ran; sleep 3")
	waitFile(t, errf, "slurm-dmtcp: preempted: checkpoint taken; the step runs on", 30*time.Second)
	c.waitState(t, low, 60*time.Second, "PENDING")
	hj := c.waitDone(t, high, 60*time.Second)
	assert.Equal(t, "COMPLETED", hj.State)
	c.startNow(t, low)
	j := c.waitDone(t, low, 120*time.Second)
	b, _ := os.ReadFile(out)
	e, _ := os.ReadFile(errf)
	require.Equal(t, "COMPLETED", j.State, "output:\n%s\nerrors:\n%s", b, e)
	assert.Regexp(t, `slurm-dmtcp: restart 1: restoring generation \d+`, string(e))
	if c.requeuedAgainAfterGrace(t, low, j.Restarts) {
		// Slurm 24.05 and later: the restored step ended whole, then Slurm ran the script
		// once more and the step from the top (grace_test.go): each rank ends once a run.
		for rk, v := range soloExpected(tasks, rounds) {
			ends := regexp.MustCompile(fmt.Sprintf(`(?m)^rank %d final (\d+) on \S+$`, rk)).FindAllStringSubmatch(string(b), -1)
			require.Len(t, ends, 2, "rank %d: one end per run:\n%s", rk, lastLines(string(b), 20))
			for _, m := range ends {
				assert.Equal(t, strconv.FormatInt(v, 10), m[1], "rank %d's final value", rk)
			}
		}
		assert.Equal(t, 2, strings.Count(string(b), "step exit 0\n"), "the step ended once a run:\n%s", lastLines(string(b), 20))
		assert.Contains(t, string(e), "slurm-dmtcp: restart 2: this step finished in an earlier run; starting it again from the top")
		return
	}
	assert.Equal(t, 1, j.Restarts)
	finals, _ := rankFinals(t, string(b))
	assert.Equal(t, soloExpected(tasks, rounds), finals, "final values of every rank")
	assert.Equal(t, 1, strings.Count(string(b), "step exit 0\n"), "the step ended once, in the run after the preemption:\n%s", b)
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
	script := writeScript(t, dir, "counter.py", fmt.Sprintf(pyCounter, 50, "0.5"))
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "--dmtcp-interval=3s", "-o", out, "-e", errf, script)
	waitFile(t, errf, "generation 2:", 90*time.Second)

	for _, pid := range descendants(t, stepdPid(t, id)) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	b, _ := os.ReadFile(out)
	before := counts(string(b))
	require.NotEmpty(t, before)
	// Requeue it, as Slurm does for a job with --requeue after a node failure.
	c.runAgain(t, id)
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

// As many --dmtcp jobs as the node has CPUs (at least 2) at once, each requeued: no port
// clash, no mix-up of checkpoints, every one ends exactly.
func TestNodeFullOfJobs(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	r := c.run(t, "", "/", nil, "sinfo", "-h", "-o", "%c")
	require.Equal(t, 0, r.code, r.stderr)
	cpus, err := strconv.Atoi(strings.TrimSpace(strings.Split(r.stdout, "\n")[0]))
	require.NoError(t, err, "sinfo -o %%c printed %q", r.stdout)
	n := max(2, min(cpus, 8)) // one job per CPU: as many as the node holds
	type run struct {
		id, out, errf string
		end           int
	}
	var runs []run
	for i := 0; i < n; i++ {
		dir := workdir(t)
		r := run{out: dir + "/out", errf: dir + "/err", end: 40 + 5*i}
		script := writeScript(t, dir, "counter.sh", fmt.Sprintf(counterEvery, r.end, "0.3"))
		r.id = c.sbatch(t, dir, "--dmtcp", "-n1", "-J", fmt.Sprintf("full%d", i), "-o", r.out, "-e", r.errf, script)
		runs = append(runs, r)
	}
	for _, r := range runs {
		c.waitState(t, r.id, 30*time.Second, "RUNNING")
	}
	for _, r := range runs {
		c.requeueAt(t, r.id, r.out, 10)
	}
	for _, r := range runs {
		j := c.waitDone(t, r.id, 120*time.Second)
		assert.Equal(t, "COMPLETED", j.State, "job %s", r.id)
		b, _ := os.ReadFile(r.out)
		assertCountedTo(t, string(b), r.end)
		e, _ := os.ReadFile(r.errf)
		assert.Contains(t, string(e), "slurm-dmtcp: restart 1: restoring generation 1")
		m, err := os.ReadFile(filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", r.id, "batch", "gen-000001", "MANIFEST.json"))
		require.NoError(t, err)
		assert.Contains(t, string(m), `"job_id": `+r.id, "each job's generation is its own")
	}
}

// pythonDriver keeps its results only in memory and runs two worker programs at a time,
// reading their answers through pipes.
const pythonDriver = `#!/usr/bin/env python3
#SBATCH --open-mode=append
import subprocess, sys
results = []
for n in range(1, %d + 1):
    workers = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.4); print(%%d)" %% (n * n + k)],
                                stdout=subprocess.PIPE, text=True) for k in (0, 1)]
    total = sum(int(w.communicate()[0]) for w in workers)
    results.append(total)
    print("step", n, total, flush=True)
print("results", len(results), sum(results), flush=True)
`

// A Python driver with worker children, requeued in the middle, ends with the result of an
// uninterrupted run.
func TestPythonDriverResumes(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("SKIP: python3 is not installed")
	}
	const steps = 14
	want := 0
	for n := 1; n <= steps; n++ {
		want += 2*n*n + 1
	}
	dir := workdir(t)
	script := writeScript(t, dir, "driver.py", fmt.Sprintf(pythonDriver, steps))
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "--dmtcp", "-o", out, "-e", errf, script)
	waitFile(t, out, "step 5 ", 90*time.Second)
	c.requeue(t, id)
	j := c.waitDone(t, id, 120*time.Second)
	e, _ := os.ReadFile(errf)
	assert.Equal(t, "COMPLETED", j.State, "error file:\n%s", e)
	b, _ := os.ReadFile(out)
	assert.Contains(t, string(b), fmt.Sprintf("results %d %d\n", steps, want))
	assert.Equal(t, 1, strings.Count(string(b), "step 1 3\n"), "the driver started from the top again:\n%s", b)
	assert.Contains(t, string(e), "slurm-dmtcp: restart 1: restoring generation 1")
	assert.Regexp(t, `checkpoint \(signal\) generation 1: .*, [2-9] processes`, string(e), "driver and workers checkpointed together")
	assert.NotContains(t, string(e), "DMTCP's checkpoint signal", "subprocess's reset of every handler is no conflict")
}

// A batch script that is not under DMTCP runs two srun --dmtcp steps. Requeued during the
// second, the job runs the script again: the first step, which had finished, starts from
// the top; the second is restored from its own checkpoint.
func TestSrunStepRestoredWhenTheJobRunsAgain(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	dir := workdir(t)
	writeScript(t, dir, "short.sh", "#!/bin/bash\necho short done\n")
	writeScript(t, dir, "counter.sh", fmt.Sprintf(counterEvery, 40, "0.3"))
	script := writeScript(t, dir, "job.sh", `#!/bin/bash
#SBATCH --open-mode=append
srun --dmtcp ./short.sh
srun --dmtcp ./counter.sh
echo "second step exit $?"
`)
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "-o", out, "-e", errf, script)
	c.requeueAt(t, id, out, 10)
	j := c.waitDone(t, id, 120*time.Second)
	assert.Equal(t, "COMPLETED", j.State)
	b, _ := os.ReadFile(out)
	assertCountedTo(t, string(b), 40)
	assert.Equal(t, 2, strings.Count(string(b), "short done\n"), "the finished step ran again from the top")
	assert.Contains(t, string(b), "second step exit 0\n")
	e, _ := os.ReadFile(errf)
	assert.Contains(t, string(e), "slurm-dmtcp: restart 1: this step finished in an earlier run; starting it again from the top")
	assert.Contains(t, string(e), "slurm-dmtcp: restart 1: restoring generation 1")
	jobDir := filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id)
	assert.FileExists(t, jobDir+"/step-0/finished")
	assert.DirExists(t, jobDir+"/step-1/gen-000001")
}

// With on_no_checkpoint=fail, a job that comes back with no verified generation fails with
// a message instead of starting from the top.
func TestNoVerifiedCheckpointFailsByPolicy(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	c.withPolicy(t, "on_no_checkpoint=fail")
	dir := workdir(t)
	script := writeScript(t, dir, "counter.sh", fmt.Sprintf(counterEvery, 200, "0.3"))
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "--dmtcp", "-o", out, "-e", errf, script)
	waitFile(t, out, "count 3\n", 60*time.Second)
	c.run(t, "", "/", nil, "scontrol", "hold", id)
	r := c.run(t, "", "/", nil, "scontrol", "requeue", id)
	require.Equal(t, 0, r.code, r.stderr)
	c.waitState(t, id, 30*time.Second, "PENDING")
	stepDir := filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "batch")
	images, _ := filepath.Glob(stepDir + "/gen-*/ckpt_*.dmtcp")
	require.NotEmpty(t, images, "the requeue's SIGTERM left a generation")
	for _, img := range images {
		require.NoError(t, os.Truncate(img, 100))
	}
	c.run(t, "", "/", nil, "scontrol", "release", id)
	c.startNow(t, id)
	j := c.waitDone(t, id, 90*time.Second)
	assert.Equal(t, "FAILED", j.State)
	e, _ := os.ReadFile(errf)
	assert.Contains(t, string(e), "no verified checkpoint generation")
	assert.Contains(t, string(e), "plugstack.conf on_no_checkpoint=fail")
	b, _ := os.ReadFile(out)
	assert.Equal(t, 1, strings.Count(string(b), "count 1\n"), "the script did not start from the top")
}

// smallDisk mounts a tmpfs of size MiB for checkpoints, removed after the test.
func smallDisk(t *testing.T, mib int) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/tmp", "sdmtcp-small-")
	require.NoError(t, err)
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm,mode=1777", mib), "tmpfs", dir).CombinedOutput()
	if err != nil {
		_ = os.Remove(dir)
		t.Skipf("SKIP: cannot mount a small tmpfs for the disk-full test: %v: %s", err, out)
	}
	t.Cleanup(func() {
		_ = exec.Command("umount", "-l", dir).Run()
		_ = os.Remove(dir)
	})
	return dir
}

// growing counts, and at count 15 takes 80 MiB of incompressible memory.
const growing = `#!/usr/bin/env python3
#SBATCH --open-mode=append
import os, time
i, ballast = 0, b""
while i < %d:
    i += 1
    print("count", i, flush=True)
    if i == 15:
        ballast = os.urandom(80 << 20)
    time.sleep(0.3)
print("final", i, flush=True)
`

// The checkpoint folder fills up: the checkpoints that cannot fit are not attempted (DMTCP
// would end the application), the application runs on, the earlier generation stays
// verified. Slurm's stop (a requeue) cannot be checkpointed either: the application runs on
// in Slurm's KillWait (10 s here). Killed there, it is restored from that generation by the
// next run; ended by itself there, it is done and not run again. The counter ends exactly,
// once.
func TestDiskFullKeepsTheJobAndItsGeneration(t *testing.T) {
	for _, tc := range []struct {
		name           string
		counts         int // 0.3 s each; the requeue comes at 30
		endsInKillWait bool
	}{
		{"killed by Slurm, restored", 100, false},
		{"ends by itself before Slurm kills it", 40, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			needDMTCP(t)
			disk := smallDisk(t, 48)
			c.withPolicy(t, "min_interval=1 compress=off checkpoint_dir="+disk+"/%u/%j")
			dir := workdir(t)
			script := writeScript(t, dir, "grow.py", fmt.Sprintf(growing, tc.counts))
			out, errf := dir+"/out", dir+"/err"
			id := c.sbatch(t, dir, "--dmtcp-interval=2s", "-o", out, "-e", errf, script)
			waitFile(t, errf, "checkpoint (periodic) skipped: the checkpoint folder", 60*time.Second)
			waitFile(t, out, "count 30\n", 60*time.Second)
			c.requeue(t, id)
			j := c.waitDone(t, id, 120*time.Second)
			e, _ := os.ReadFile(errf)
			assert.Equal(t, "COMPLETED", j.State, "error file:\n%s", e)
			b, _ := os.ReadFile(out)
			assertCountedTo(t, string(b), tc.counts)
			assert.Equal(t, 1, strings.Count(string(b), fmt.Sprintf("final %d\n", tc.counts)), "the result, once:\n%s", b)
			assert.Contains(t, string(e), "slurm-dmtcp: checkpoint (periodic) generation 1: ")
			assert.Contains(t, string(e), "checkpoint (signal) skipped: the checkpoint folder", "the SIGTERM checkpoint could not fit either")
			if tc.endsInKillWait {
				assert.Contains(t, string(e), "slurm-dmtcp: restart 1: this step ended by itself as Slurm stopped the run before (exit 0); it is not run again")
			} else {
				assert.Regexp(t, `restart 1: restoring generation \d+ \(checkpoint of [^,]+, periodic\)`, string(e))
			}
			assert.NotContains(t, string(e), "ASSERT", "DMTCP never hit the full disk")
			gens, _ := filepath.Glob(filepath.Join(disk, testUser, id, "batch", "gen-*", "MANIFEST.json"))
			assert.NotEmpty(t, gens)
			if t.Failed() {
				logAgents(t, filepath.Join(disk, testUser, id))
			}
		})
	}
}

// ballastCounter counts with 48 MiB of compressible memory, so that each (compressed)
// checkpoint takes a few seconds.
const ballastCounter = `#!/usr/bin/env python3
#SBATCH --open-mode=append
import time
ballast = bytes(range(256)) * (48 << 12)
i = 0
while i < %d:
    i += 1
    print("count", i, flush=True)
    time.sleep(0.3)
assert len(ballast) == 48 << 20
print("final", i, flush=True)
`

// The agent is killed with SIGKILL while DMTCP writes a checkpoint: nothing is reported as
// saved, the half-made checkpoint never becomes a generation, the coordinator goes with the
// agent, and a requeue restores the generation before it.
func TestAgentKilledDuringCheckpoint(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	c.withPolicy(t, "min_interval=1 compress=on")
	dir := workdir(t)
	script := writeScript(t, dir, "counter.py", fmt.Sprintf(ballastCounter, 120))
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "--dmtcp-interval=2s", "-o", out, "-e", errf, script)
	stepDir := filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "batch")
	waitFile(t, errf, "generation 1:", 90*time.Second)
	// Wait for the next checkpoint to be under way, then kill the agent.
	deadline := time.Now().Add(60 * time.Second)
	var temps []string
	for time.Now().Before(deadline) && len(temps) == 0 {
		temps, _ = filepath.Glob(stepDir + "/.current/*.temp")
		time.Sleep(20 * time.Millisecond)
	}
	require.NotEmpty(t, temps, "no checkpoint under way")
	pids, _ := exec.Command("pgrep", "-f", "slurm-dmtcp-agent --protocol=1 --job-id="+id+" ").Output()
	require.NotEmpty(t, strings.Fields(string(pids)))
	for _, p := range strings.Fields(string(pids)) {
		pid, _ := strconv.Atoi(p)
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	}
	killedAt, _ := os.ReadFile(errf)
	time.Sleep(3 * time.Second)
	e, _ := os.ReadFile(errf)
	// The coordinator goes with its agent, and the computation's processes say so in
	// DMTCP's words; nothing of slurm-dmtcp's claims a checkpoint.
	assert.NotContains(t, strings.TrimPrefix(string(e), string(killedAt)), "slurm-dmtcp:", "nothing reported after the agent died")
	gens, _ := filepath.Glob(stepDir + "/gen-*")
	newest := gens[len(gens)-1]
	for _, l := range leftovers(t, id) {
		assert.NotContains(t, l, "dmtcp_coordinator", "the coordinator outlived its agent")
	}

	c.runAgain(t, id)
	j := c.waitDone(t, id, 150*time.Second)
	assert.Equal(t, "COMPLETED", j.State)
	b, _ := os.ReadFile(out)
	assertCountedTo(t, string(b), 120)
	e, _ = os.ReadFile(errf)
	n := strings.TrimLeft(filepath.Base(newest)[4:], "0")
	assert.Contains(t, string(e), "slurm-dmtcp: restart 1: restoring generation "+n+" ")
}
