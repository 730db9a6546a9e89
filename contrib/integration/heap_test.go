//go:build integration

package integration

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// heapGrower keeps a little more memory at every step, in blocks that malloc takes from its
// main heap (under its mmap threshold), so that the heap grows after every restore.
const heapGrower = `#!/usr/bin/env python3
#SBATCH --open-mode=append
import time
keep = []
print("start", flush=True)
for i in range(1, %d + 1):
    keep.extend(bytearray([i %% 256]) * 20000 for _ in range(100))
    print("step", i, len(keep), sum(b[0] + b[-1] for b in keep), flush=True)
    time.sleep(0.2)
print("result", len(keep), sum(sum(b) for b in keep), flush=True)
`

var heapLineRE = regexp.MustCompile(`(?m)^(step \d+|result) \d+ \d+$`)

// A program whose heap grows after each restore goes on every time: DMTCP 5.0 leaves libc's
// program break below the kernel's in a restored process about one restore in two, and
// malloc then wrote into unmapped memory (dmtcpplugin/brk.c). Six requeues in a row, each
// restore must go on at the first attempt (no restore retried), and the job ends with the
// figures of an uninterrupted run.
func TestHeapGrowsAfterEveryRestore(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	const steps, requeues = 60, 6
	dir := workdir(t)
	script := writeScript(t, dir, "grow.py", fmt.Sprintf(heapGrower, steps))
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "--dmtcp", "-o", out, "-e", errf, script)
	for r := 1; r <= requeues; r++ {
		waitFile(t, out, fmt.Sprintf("\nstep %d ", 6*r), 90*time.Second)
		c.requeue(t, id)
	}
	j := c.waitDone(t, id, 180*time.Second)
	e, _ := os.ReadFile(errf)
	b, _ := os.ReadFile(out)
	require.Equal(t, "COMPLETED", j.State, "error file:\n%s", e)
	assert.Contains(t, string(e), fmt.Sprintf("slurm-dmtcp: restart %d: restoring generation", requeues))
	assert.NotContains(t, string(e), "failed (", "a restore failed and was retried:\n%s", e)
	assert.Equal(t, 1, strings.Count(string(b), "start\n"), "the program started from the top again:\n%s", b)

	ref := c.run(t, testUser, dir, nil, script)
	require.Equal(t, 0, ref.code, ref.stderr)
	want := heapLineRE.FindAllString(ref.stdout, -1)
	require.Len(t, want, steps+1)
	got := heapLineRE.FindAllString(string(b), -1)
	assert.Equal(t, want, got, "figures of the requeued job differ from the uninterrupted run's")
}
