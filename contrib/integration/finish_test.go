//go:build integration

package integration

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// launcherPids finds the task launcher of a job's batch step.
func launcherPids(t *testing.T, id string) []int {
	t.Helper()
	var pids []int
	for _, pid := range descendants(t, stepdPid(t, id)) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(strings.SplitN(string(b), "\x00", 2)[0], "slurm-dmtcp-exec") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// The task launcher itself is SIGKILLed (as the OOM killer or Slurm's SIGKILL would): its
// program goes with it, nothing says that the step ended by itself, so it is not marked
// finished, and the job's next run restores the newest generation instead of starting from
// the top.
func TestLauncherKilledStepIsRestored(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	c.withPolicy(t, "min_interval=1")
	dir := workdir(t)
	script := writeScript(t, dir, "counter.py", fmt.Sprintf(pyCounter, 60, "0.3"))
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "--dmtcp-interval=2s", "-o", out, "-e", errf, script)
	stepDir := filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "batch")
	waitFile(t, errf, "generation 1:", 60*time.Second)
	pids := launcherPids(t, id)
	require.Len(t, pids, 1, "the batch step's launcher")
	require.NoError(t, syscall.Kill(pids[0], syscall.SIGKILL))
	c.waitState(t, id, 60*time.Second, "FAILED", "COMPLETED", "PENDING", "REQUEUED")
	assert.NoFileExists(t, filepath.Join(stepDir, "finished"), "a killed launcher is no proof of a finish")

	c.runAgain(t, id)
	j := c.waitDone(t, id, 120*time.Second)
	e, _ := os.ReadFile(errf)
	assert.Equal(t, "COMPLETED", j.State, "error file:\n%s", e)
	assert.Contains(t, string(e), "slurm-dmtcp: restart 1: restoring generation ")
	assert.NotContains(t, string(e), "starting it again from the top")
	b, _ := os.ReadFile(out)
	assertCountedTo(t, string(b), 60)
	if t.Failed() {
		logAgents(t, filepath.Dir(stepDir))
	}
}

// crashOnce counts like pyCounter, and once when the file named by its first argument
// appears (the test puts it there while the job waits to run again, so that it is the
// restored process that fails, as one that DMTCP restores wrongly would) kills itself with
// SIGSEGV, or (second argument "child") runs a subprocess that does, and ends with
// Python's exit 1 for the CalledProcessError.
const crashOnce = `#!/usr/bin/env python3
#SBATCH --open-mode=append
import os, signal, subprocess, sys, time
flag, how = sys.argv[1], sys.argv[2]
i = 0
while i < %d:
    if os.path.exists(flag):
        os.remove(flag)
        if how == "child":
            subprocess.run([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"], check=True)
        os.kill(os.getpid(), signal.SIGSEGV)
    i += 1
    print("count", i, flush=True)
    time.sleep(0.3)
print("final", i, flush=True)
`

// A restored program that dies with SIGSEGV right after the restore, or ends with an error
// because its restored subprocess did, is restored again, with one line in the job's error
// file, and the job ends with the uninterrupted result.
func TestFailedRestoreIsRetried(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	for _, tc := range []struct{ how, says string }{
		{"self", `task 0 was killed by signal 11 \(segmentation fault, exit 139\)`},
		{"child", `task 0 ended with exit 1`},
	} {
		t.Run(tc.how, func(t *testing.T) {
			c.withPolicy(t, "min_interval=1")
			dir := workdir(t)
			script := writeScript(t, dir, "counter.py", fmt.Sprintf(crashOnce, 40))
			flag := filepath.Join(dir, "crash")
			out, errf := dir+"/out", dir+"/err"
			id := c.sbatch(t, dir, "--dmtcp-interval=2s", "-o", out, "-e", errf, script, flag, tc.how)
			waitFile(t, errf, "generation 1:", 60*time.Second)
			r := c.run(t, "", "/", nil, "scontrol", "requeue", id)
			require.Equal(t, 0, r.code, r.stderr)
			c.waitState(t, id, 40*time.Second, "PENDING")
			require.NoError(t, os.WriteFile(flag, nil, 0o666))
			c.startNow(t, id)
			j := c.waitDone(t, id, 120*time.Second)
			e, _ := os.ReadFile(errf)
			assert.Equal(t, "COMPLETED", j.State, "error file:\n%s", e)
			assert.NoFileExists(t, flag, "the restored program saw the flag")
			assert.Regexp(t, `slurm-dmtcp: restore of generation (\d+) failed \(`+tc.says+`\): restoring generation \d+, attempt 2 of 4`, string(e))
			b, _ := os.ReadFile(out)
			assertCountedTo(t, string(b), 40)
			if t.Failed() {
				logAgents(t, filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id))
			}
		})
	}
}

// Slurm requeues the job again while it restores (SIGTERM to the agent and the restoring
// tasks, a random moment of the restore): nothing is marked finished, and the next run
// restores again; the counter ends exactly, never started from the top.
func TestRequeueDuringRestoreResumes(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	rng := rand.New(rand.NewSource(faultSeed(t)))
	c.withPolicy(t, "min_interval=1 compress=on")
	dir := workdir(t)
	script := writeScript(t, dir, "counter.py", fmt.Sprintf(ballastCounter, 60))
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "--dmtcp-interval=2s", "-o", out, "-e", errf, script)
	waitFile(t, errf, "generation 1:", 60*time.Second)
	c.requeue(t, id)
	waitFile(t, errf, "restart 1: restoring generation ", 60*time.Second)
	delay := time.Duration(rng.Intn(1500)) * time.Millisecond
	time.Sleep(delay)
	t.Logf("requeued again %s into the restore", delay)
	c.requeue(t, id)
	j := c.waitDone(t, id, 150*time.Second)
	e, _ := os.ReadFile(errf)
	assert.Equal(t, "COMPLETED", j.State, "error file:\n%s", e)
	assert.Contains(t, string(e), "slurm-dmtcp: restart 2: restoring generation ")
	assert.NotContains(t, string(e), "from the top")
	b, _ := os.ReadFile(out)
	assertCountedTo(t, string(b), 60)
	if t.Failed() {
		logAgents(t, filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id))
	}
}

// endsAtTheStop does its work, then leaves DMTCP (dmtcp_nocheckpoint) and waits for Slurm's
// SIGTERM, on which it ends by itself with exit 0: a program that ends just as Slurm stops
// the job, made to happen every time. The stop's checkpoint finds no process.
const endsAtTheStop = `#!/bin/sh
echo "work done"
exec %s/dmtcp_nocheckpoint /bin/sh -c 'trap "echo ended; exit 0" TERM; echo up > "$0"; while :; do sleep 0.1; done' %s
`

// A step whose program ends by itself as Slurm requeues the job is done: the next run does
// not run it again (from the top, or from a generation), says so in the error file, and the
// job completes with the program's status and its output once.
func TestEndAtTheStopIsNotRunAgain(t *testing.T) {
	c := newCluster(t)
	inst := needDMTCP(t)
	dir := workdir(t)
	waiting := filepath.Join(dir, "waiting")
	script := writeScript(t, dir, "job.sh", fmt.Sprintf(endsAtTheStop, inst.Bin, waiting))
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "--dmtcp", "--open-mode=append", "-o", out, "-e", errf, script)
	waitFile(t, waiting, "up", 60*time.Second)
	c.requeue(t, id)
	j := c.waitDone(t, id, 90*time.Second)
	e, _ := os.ReadFile(errf)
	b, _ := os.ReadFile(out)
	assert.Equal(t, "COMPLETED", j.State, "error file:\n%s", e)
	assert.Equal(t, "work done\nended\n", string(b), "the work ran once; error file:\n%s", e)
	assert.Contains(t, string(e), "slurm-dmtcp: restart 1: this step ended by itself as Slurm stopped the run before (exit 0); it is not run again")
	assert.NotContains(t, string(e), "from the top")
}
