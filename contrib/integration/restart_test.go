//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// counterEvery keeps its state only in memory (a shell variable) and prints every value,
// with a chosen pause between counts: fmt.Sprintf(counterEvery, last, pause).
const counterEvery = `#!/bin/bash
#SBATCH --open-mode=append
i=0
while [ $i -lt %d ]; do i=$((i+1)); echo "count $i"; sleep %s; done
echo "final $i"
`

// requeueAt waits for the job to print "count N" (N >= at), requeues it, and makes it
// eligible at once.
func (c *cluster) requeueAt(t *testing.T, id, out string, at int) {
	t.Helper()
	waitFile(t, out, fmt.Sprintf("count %d\n", at), 90*time.Second)
	c.requeue(t, id)
}

// counts returns the values printed, in order.
func counts(out string) []int {
	var v []int
	for _, m := range regexp.MustCompile(`(?m)^count (\d+)$`).FindAllStringSubmatch(out, -1) {
		var n int
		fmt.Sscan(m[1], &n)
		v = append(v, n)
	}
	return v
}

// An in-memory counter requeued twice in a row ends exactly as an uninterrupted run: each
// SIGTERM checkpoint becomes a verified generation and each run resumes from the newest.
func TestRequeueTwiceResumesFromCheckpoint(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	dir := workdir(t)
	script := writeScript(t, dir, "counter.sh", fmt.Sprintf(counterEvery, 60, "0.2"))
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "--dmtcp", "-o", out, "-e", errf, script)

	c.requeueAt(t, id, out, 10)
	c.waitState(t, id, 60*time.Second, "RUNNING")
	b, _ := os.ReadFile(out)
	c.requeueAt(t, id, out, len(counts(string(b)))+5)
	j := c.waitDone(t, id, 120*time.Second)
	assert.Equal(t, "COMPLETED", j.State)
	assert.Equal(t, 2, j.Restarts)

	b, _ = os.ReadFile(out)
	assert.Contains(t, string(b), "final 60\n", "the counter ended at the uninterrupted result")
	got := counts(string(b))
	require.NotEmpty(t, got)
	assert.Equal(t, 60, got[len(got)-1])
	// Resumed, not restarted: the values never fall back to 1 after the start.
	restarts := 0
	for i := 1; i < len(got); i++ {
		assert.GreaterOrEqual(t, got[i], got[i-1], "count went back from %d to %d", got[i-1], got[i])
		if got[i] == 1 {
			restarts++
		}
	}
	assert.Zero(t, restarts, "the script started from the top again: %v", got)

	e, _ := os.ReadFile(errf)
	assert.Equal(t, 2, strings.Count(string(e), "slurm-dmtcp: checkpoint (signal) generation"), "stderr:\n%s", e)
	assert.Contains(t, string(e), "slurm-dmtcp: restart 1: restoring generation 1")
	assert.Contains(t, string(e), "slurm-dmtcp: restart 2: restoring generation 2")

	stepDir := filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "batch")
	gens, _ := filepath.Glob(stepDir + "/gen-*")
	assert.Equal(t, []string{stepDir + "/gen-000001", stepDir + "/gen-000002"}, gens, "keep=2 generations")
	for _, g := range gens {
		m, err := os.ReadFile(g + "/MANIFEST.json")
		require.NoError(t, err)
		assert.Contains(t, string(m), `"reason": "signal"`)
		assert.Contains(t, string(m), `"job_id": `+id)
	}
}

// A damaged newest generation is skipped with a message; the job resumes from the previous.
func TestDamagedNewestGenerationFallsBack(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	c.withPolicy(t, "min_interval=1")
	dir := workdir(t)
	script := writeScript(t, dir, "counter.sh", fmt.Sprintf(counterEvery, 50, "0.2"))
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "--dmtcp-interval=2s", "-o", out, "-e", errf, script)
	stepDir := filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "batch")
	waitFile(t, errf, "generation 2:", 90*time.Second)
	c.requeueAt(t, id, out, 1)
	c.waitState(t, id, 60*time.Second, "RUNNING", "COMPLETED")
	// Take the job down again, flip a byte in the newest generation, and let it come back.
	c.run(t, "", "/", nil, "scontrol", "hold", id)
	r := c.run(t, "", "/", nil, "scontrol", "requeue", id)
	require.Equal(t, 0, r.code, r.stderr)
	c.waitState(t, id, 30*time.Second, "PENDING")
	gens, _ := filepath.Glob(stepDir + "/gen-*")
	require.GreaterOrEqual(t, len(gens), 2)
	newest := gens[len(gens)-1]
	images, _ := filepath.Glob(newest + "/ckpt_*.dmtcp")
	require.NotEmpty(t, images)
	f, err := os.OpenFile(images[0], os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte{0xff, 0x00, 0xff}, 4096)
	require.NoError(t, err)
	f.Close()
	c.run(t, "", "/", nil, "scontrol", "release", id)
	c.startNow(t, id)
	j := c.waitDone(t, id, 120*time.Second)
	assert.Equal(t, "COMPLETED", j.State)
	e, _ := os.ReadFile(errf)
	assert.Contains(t, string(e), "generation "+strings.TrimLeft(filepath.Base(newest)[4:], "0")+" is damaged")
	assert.Regexp(t, `sha256 mismatch|size mismatch`, string(e))
	assert.Regexp(t, `restoring generation \d+`, string(e))
	b, _ := os.ReadFile(out)
	assert.Contains(t, string(b), "final 50\n")
}

// requeue requeues the job as root (its tasks get SIGTERM) and starts its next run as soon
// as Slurm allows.
func (c *cluster) requeue(t *testing.T, id string) {
	t.Helper()
	r := c.run(t, "", "/", nil, "scontrol", "requeue", id)
	require.Equal(t, 0, r.code, r.stderr)
	c.waitState(t, id, 40*time.Second, "PENDING")
	c.startNow(t, id)
}

// runAgain requeues a job whatever state a kill left it in, until a new run of it starts.
// Slurm may learn of a lost batch step only later and end that run then: it is requeued
// again.
func (c *cluster) runAgain(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var pendingSince time.Time
	for j := c.job(t, id); !(j.State == "RUNNING" && j.Restarts > 0); j = c.job(t, id) {
		require.True(t, time.Now().Before(deadline), "job %s did not run again: %+v", id, j)
		if j.State != "PENDING" {
			pendingSince = time.Time{}
		}
		switch j.State {
		case "PENDING":
			// Not in the second of the kill: see startNow.
			if pendingSince.IsZero() {
				pendingSince = time.Now()
			} else if time.Since(pendingSince) >= 2*time.Second {
				c.run(t, "", "/", nil, "scontrol", "update", "JobId="+id, "StartTime=now")
			}
		case "RUNNING", "COMPLETED", "FAILED", "NODE_FAIL", "CANCELLED":
			c.run(t, "", "/", nil, "scontrol", "requeue", id)
		}
		time.Sleep(time.Second)
	}
}

// A file deleted while the program holds it open is saved by DMTCP beside the images
// (ckpt_*_files/); the generation keeps that copy and the restore puts it back: the program
// reads after the restore what it wrote before.
func TestDeletedOpenFileRestored(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("SKIP: python3 is not installed")
	}
	dir := workdir(t)
	script := writeScript(t, dir, "job.py", `#!/usr/bin/env python3
#SBATCH --open-mode=append
import os, tempfile, time
fd, path = tempfile.mkstemp(dir=".")
f = os.fdopen(fd, "w+b")
os.unlink(path)
f.write(b"written before the checkpoint")
f.flush()
for i in range(1, 25):
    print("count", i, flush=True)
    time.sleep(0.3)
f.seek(0)
print("read back:", f.read().decode(), flush=True)
`)
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "--dmtcp", "-o", out, "-e", errf, script)
	c.requeueAt(t, id, out, 5)
	j := c.waitDone(t, id, 90*time.Second)
	e, _ := os.ReadFile(errf)
	b, _ := os.ReadFile(out)
	require.Equal(t, "COMPLETED", j.State, "error file:\n%s", e)
	assert.Contains(t, string(e), "slurm-dmtcp: restart 1: restoring generation 1")
	assert.Contains(t, string(b), "read back: written before the checkpoint\n")
	assert.Equal(t, 1, strings.Count(string(b), "count 1\n"), "the program started from the top again:\n%s", b)
	saved, _ := filepath.Glob(filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "batch", "gen-*", "ckpt_*_files", "*"))
	assert.NotEmpty(t, saved, "DMTCP saved the deleted file with the generation")
}
