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
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/generations"
)

// The requeue storm (SDMTCP_STORM_REQUEUES=N, make storm REQUEUES=N): one Python driver
// that starts a subprocess and uses a multiprocessing pool all the time, requeued N times,
// each at a random moment once the restore before it runs. Every requeue is a targeted
// trial of DMTCP's known problems with such programs: the SIGTERM checkpoint must be
// written (not "never writes"), and its restore must go on without an empty pipe read or
// a worker's SIGSEGV. It prints one line per problem with its count.

// stormDriver steps until the file "stop" appears in its folder; each step's total is a
// function of the step, so that any lost or doubled work shows.
const stormDriver = `#!/usr/bin/env python3
import multiprocessing, os, subprocess, sys, time
def sq(x):
    return x * x
if __name__ == "__main__":
    total, n = 0, 0
    with multiprocessing.Pool(2) as pool:
        while not os.path.exists("stop"):
            n += 1
            out = subprocess.run([sys.executable, "-c", "print(%d * 3)" % n], stdout=subprocess.PIPE, text=True, check=True).stdout
            total += int(out) + sum(pool.map(sq, range(n, n + 4)))
            print("step", n, total, flush=True)
            time.sleep(0.05)
    print("result", n, total, flush=True)
`

var stormStepRE = regexp.MustCompile(`(?m)^(step|result) (\d+) (\d+)$`)

func TestRequeueStorm(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SDMTCP_STORM_REQUEUES"))
	if n <= 0 {
		t.Skip("SKIP: the requeue storm runs with SDMTCP_STORM_REQUEUES=N (make storm REQUEUES=N)")
	}
	c := newCluster(t)
	needDMTCP(t)
	seed := faultSeed(t)
	rng := rand.New(rand.NewSource(seed))
	c.withPolicy(t, "min_interval=1 keep=3")
	dir := workdir(t)
	script := writeScript(t, dir, "driver.py", stormDriver)
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "-p", "low", "-c2", "--requeue", "--open-mode=append", "-o", out, "-e", errf, "--dmtcp", script)
	stepDir := filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "batch")
	t.Logf("storm: job %s, seed %d, folder %s", id, seed, dir)

	var notWritten, fellBack int
	for i := 1; i <= n; i++ {
		// The run before this requeue goes on: two steps done after its start or restore.
		b, _ := os.ReadFile(out)
		mark := len(b)
		require.Eventually(t, func() bool {
			b, _ := os.ReadFile(out)
			return len(b) > mark && strings.Count(string(b[mark:]), "step ") >= 2
		}, 60*time.Second, 20*time.Millisecond, "requeue %d: the driver made no progress after its restore; error file:\n%s", i, tail(errf))
		time.Sleep(time.Duration(rng.Intn(1000)) * time.Millisecond)
		before := len(announced(errf))
		c.requeue(t, id)
		line := waitFile(t, errf, fmt.Sprintf("restart %d: ", i), 90*time.Second)
		got := announced(errf)
		m := regexp.MustCompile(fmt.Sprintf(`restart %d: restoring generation (\d+)`, i)).FindStringSubmatch(line)
		require.NotNil(t, m, "requeue %d: no restore:\n%s", i, tail(errf))
		restored, _ := strconv.Atoi(m[1])
		switch {
		case len(got) == before:
			notWritten++ // the SIGTERM checkpoint wrote no generation
			t.Logf("requeue %d: no SIGTERM generation; restored %d", i, restored)
		case restored != got[len(got)-1]:
			fellBack++
			t.Logf("requeue %d: generation %d announced, %d restored", i, got[len(got)-1], restored)
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stop"), nil, 0o644))
	j := c.waitDone(t, id, 120*time.Second)
	e, _ := os.ReadFile(errf)
	b, _ := os.ReadFile(out)

	// Every step's total is right, and the driver ended with the total of its last step.
	var last int
	for _, m := range stormStepRE.FindAllStringSubmatch(string(b), -1) {
		step, _ := strconv.Atoi(m[2])
		total, _ := strconv.Atoi(m[3])
		assert.Equal(t, driverResult(step), total, "%s %d", m[1], step)
		if m[1] == "result" {
			last = step
		}
	}
	emptyPipe := strings.Count(string(e), "invalid literal for int() with base 10: ''")
	segv := strings.Count(string(e), "SIGSEGV")
	// Restores retried, computations that died, restores that never completed.
	retried := len(regexp.MustCompile(`restore of generation \d+ failed|the computation died|restore did not complete`).FindAllString(string(e), -1))
	fmt.Printf("storm: %d requeues of job %s (seed %d): SIGTERM checkpoint not written %d, restored an older generation %d, "+
		"empty pipe read %d, SIGSEGV %d, failures retried %d\n", n, id, seed, notWritten, fellBack, emptyPipe, segv, retried)
	assert.Equal(t, "COMPLETED", j.State, "error file:\n%s", e)
	assert.NotZero(t, last, "the driver printed its result")
	assert.NotContains(t, string(e), "DMTCP's checkpoint signal", "subprocess's reset of every handler is no conflict")
	assert.Zero(t, notWritten+fellBack+emptyPipe+segv+retried, "error file:\n%s", e)
	assert.Equal(t, n, strings.Count(string(e), "restoring generation "), "one restore a requeue")
	// The newest generation verifies.
	dirs, _ := filepath.Glob(filepath.Join(stepDir, "gen-*"))
	require.NotEmpty(t, dirs, "no generation in %s", stepDir)
	newest, _ := strconv.Atoi(strings.TrimPrefix(filepath.Base(dirs[len(dirs)-1]), "gen-"))
	_, err := generations.Generation{Number: newest, Path: dirs[len(dirs)-1]}.Verify()
	assert.NoError(t, err, "the newest generation, %d", newest)
}

// tail is the end of a file, for messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
