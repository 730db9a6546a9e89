//go:build integration

package integration

import (
	"fmt"
	"math/rand"
	"os"
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

// seedFrom is the seed that the environment variable name gives (a replay), else a new one.
func seedFrom(name string) (int64, error) {
	v := os.Getenv(name)
	if v == "" {
		return time.Now().UnixNano() % 1000000, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %v", name, err)
	}
	return n, nil
}

// faultSeed is the seed of the fault trials: SDMTCP_FAULT_SEED=N replays a run.
func faultSeed(t *testing.T) int64 {
	seed, err := seedFrom("SDMTCP_FAULT_SEED")
	require.NoError(t, err)
	t.Logf("fault seed %d (replay: SDMTCP_FAULT_SEED=%d)", seed, seed)
	return seed
}

// victimPids finds the processes of a job's batch step to kill: "coordinator",
// "application" (the counter itself: python3 running the batch script, slurm_script) or
// "bash-script" (bash running the batch script).
func victimPids(t *testing.T, id, victim string) []int {
	t.Helper()
	var pattern string
	switch victim {
	case "coordinator":
		pattern = "dmtcp_coordinator.*/" + id + `\.batch/`
	case "application":
		pattern = "python3.* .*/slurm_script"
	case "bash-script":
		pattern = `^\S*bash \S*/slurm_script $`
	}
	var pids []int
	for _, pid := range descendants(t, stepdPid(t, id)) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if regexp.MustCompile(pattern).MatchString(cmd) && !strings.Contains(cmd, "slurm-dmtcp-exec") && !strings.HasPrefix(cmd, "/bin/sh") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// The coordinator or the application is killed with SIGKILL at a random point of a
// checkpoint (seeded, replayable): nothing is reported as saved that was not, and the
// newest verified generation restores; the counter ends exactly.
func TestFaultKillDuringCheckpoint(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	rng := rand.New(rand.NewSource(faultSeed(t)))
	for _, victim := range []string{"coordinator", "application"} {
		delay := time.Duration(rng.Intn(800)) * time.Millisecond
		t.Run(victim, func(t *testing.T) {
			c.withPolicy(t, "min_interval=1 compress=on")
			dir := workdir(t)
			script := writeScript(t, dir, "counter.py", fmt.Sprintf(ballastCounter, 90))
			out, errf := dir+"/out", dir+"/err"
			id := c.sbatch(t, dir, "--dmtcp-interval=2s", "-o", out, "-e", errf, script)
			stepDir := filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "batch")
			waitFile(t, errf, "generation 1:", 90*time.Second)
			deadline := time.Now().Add(60 * time.Second)
			for time.Now().Before(deadline) {
				if temps, _ := filepath.Glob(stepDir + "/.current/*.temp"); len(temps) > 0 {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(delay)
			pids := victimPids(t, id, victim)
			require.NotEmpty(t, pids, "no %s process in job %s", victim, id)
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Logf("killed the %s (%v) %s into a checkpoint", victim, pids, delay)
			time.Sleep(3 * time.Second)

			// Every generation the job's error file announced exists and verifies.
			e, _ := os.ReadFile(errf)
			for _, m := range regexp.MustCompile(`generation (\d+): `).FindAllStringSubmatch(string(e), -1) {
				n, _ := strconv.Atoi(m[1])
				assert.FileExists(t, filepath.Join(stepDir, fmt.Sprintf("gen-%06d", n), "MANIFEST.json"), "announced generation %d", n)
			}
			gens, _ := filepath.Glob(stepDir + "/gen-*")
			require.NotEmpty(t, gens)
			newest := strings.TrimLeft(filepath.Base(gens[len(gens)-1])[4:], "0")

			// Whatever state the kill left the job in, it runs again from its newest generation.
			c.runAgain(t, id)
			j := c.waitDone(t, id, 150*time.Second)
			e, _ = os.ReadFile(errf)
			assert.Equal(t, "COMPLETED", j.State, "error file:\n%s", e)
			b, _ := os.ReadFile(out)
			assertCountedTo(t, string(b), 90)
			assert.Contains(t, string(e), "slurm-dmtcp: restart 1: restoring generation "+newest+" ")
		})
	}
}

// The job's checkpoint folder is removed while it runs: the next checkpoint makes it again,
// the application never notices, and a requeue restores from the new folder.
func TestCheckpointFolderRemovedWhileRunning(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	c.withPolicy(t, "min_interval=1")
	dir := workdir(t)
	script := writeScript(t, dir, "counter.py", fmt.Sprintf(pyCounter, 60, "0.3"))
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "--dmtcp-interval=2s", "-o", out, "-e", errf, script)
	jobDir := filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id)
	waitFile(t, errf, "generation 1:", 60*time.Second)
	require.NoError(t, os.RemoveAll(jobDir))
	// A checkpoint after the removal lands in the folder made again.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m, _ := filepath.Glob(jobDir + "/batch/gen-*/MANIFEST.json"); len(m) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	gens, _ := filepath.Glob(jobDir + "/batch/gen-*")
	require.NotEmpty(t, gens, "no generation after the folder was removed")
	waitFile(t, out, "count 30\n", 60*time.Second)
	c.requeue(t, id)
	j := c.waitDone(t, id, 120*time.Second)
	e, _ := os.ReadFile(errf)
	assert.Equal(t, "COMPLETED", j.State, "error file:\n%s", e)
	b, _ := os.ReadFile(out)
	assertCountedTo(t, string(b), 60)
	assert.Contains(t, string(e), "slurm-dmtcp: restart 1: restoring generation ")
	assert.NotContains(t, string(e), "ASSERT")
}
