//go:build integration

package integration

import (
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/proto/manifest"
)

// The campaign's outages: the checkpoint folder's file system full, and slurmctld gone
// (every scontrol of the agent fails). Both end with the job run again the way Slurm
// would, unless it finished.

// fullFS is a small file system of the cluster's own (tmpfs, sticky like /tmp), the
// checkpoint folder of disk-full trials: filling it fills nobody else's disk.
func (c *cluster) fullFS(t *testing.T) string {
	t.Helper()
	dir := c.dir + "-full"
	require.NoError(t, os.MkdirAll(dir, 0o755))
	var st, parent syscall.Stat_t
	require.NoError(t, syscall.Stat(dir, &st))
	require.NoError(t, syscall.Stat(filepath.Dir(dir), &parent))
	if st.Dev == parent.Dev {
		out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=3g,mode=1777", "tmpfs", dir).CombinedOutput()
		require.NoError(t, err, "mount a tmpfs on %s: %s", dir, out)
	}
	return dir
}

// fillUp leaves about leave bytes free in dir's file system with a file of root's, and
// returns what frees that space again.
func fillUp(t *testing.T, dir string, leave int64) (free func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	require.NoError(t, err)
	defer f.Close()
	// The job writes meanwhile (a checkpoint under way): the free space is measured again
	// when it shrank under the filler.
	var size int64
	for try := 0; ; try++ {
		var st syscall.Statfs_t
		require.NoError(t, syscall.Statfs(dir, &st))
		if size = int64(st.Bavail)*st.Bsize - leave; size <= 0 {
			break
		}
		err := syscall.Fallocate(int(f.Fd()), 0, 0, size)
		if err == nil {
			break
		}
		require.True(t, err == syscall.ENOSPC && try < 20, "fill %s with %d bytes: %v", dir, size, err)
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("disk full: %s filled with %d MiB, %d KiB left free", dir, size>>20, leave>>10)
	freed := false
	free = func() {
		if !freed {
			freed = true
			_ = os.Remove(path)
			t.Logf("disk full: %s freed", dir)
		}
	}
	t.Cleanup(free)
	return free
}

// newestGenSize is the size in bytes of the newest generation in stepDir, as its manifest
// lists it (0 with none).
func newestGenSize(stepDir string) int64 {
	gens, _ := filepath.Glob(filepath.Join(stepDir, "gen-*"))
	if len(gens) == 0 {
		return 0
	}
	m, err := manifest.Read(gens[len(gens)-1])
	if err != nil {
		return 0
	}
	return m.TotalSize()
}

// diskFull fills the job's checkpoint file system at a random moment, leaving less room
// than a generation takes (sometimes none: the agent's check refuses the checkpoint;
// sometimes some: DMTCP or the commit meets ENOSPC), waits for the next checkpoints to
// meet it, frees the space before or after a requeue, and has the job run again.
func (c *cluster) diskFull(t *testing.T, id, fs, stepDir, out string, w campaignWorkload, rng *rand.Rand) {
	t.Helper()
	gen := newestGenSize(stepDir)
	free := fillUp(t, fs, rng.Int63n(2*gen+1))
	// The checkpoints taken meanwhile meet the full disk (the job asks one every 2 s).
	time.Sleep(4*time.Second + time.Duration(rng.Intn(4000))*time.Millisecond)
	if rng.Intn(2) == 0 {
		free()
		c.resume(t, id, out, w)
		return
	}
	c.resume(t, id, out, w)
	time.Sleep(time.Duration(rng.Intn(3000)) * time.Millisecond)
	free()
}

// controllerDown stops slurmctld (every scontrol the agent runs fails: "Unable to contact
// slurm controller"), and while it is gone does one of: nothing (periodic checkpoints go
// on), a SIGTERM to every process of the job as slurmstepd sends it on a requeue, or a
// SIGKILL of the application (the agent's requeue to restore fails). Then slurmctld comes
// back and the job runs again unless it finished.
func (c *cluster) controllerDown(t *testing.T, id, out string, w campaignWorkload, rng *rand.Rand) {
	t.Helper()
	action := []string{"nothing", "sigterm-job", "kill-application"}[rng.Intn(3)]
	c.stopController(t)
	restarted := false
	defer func() {
		if !restarted {
			c.startController(t)
		}
	}()
	switch action {
	case "sigterm-job":
		for _, p := range jobProcs(t, id) {
			if !strings.HasPrefix(p.cmd, "slurmstepd:") {
				_ = syscall.Kill(p.pid, syscall.SIGTERM)
			}
		}
	case "kill-application":
		if pids := victims(t, id, w, "kill-application"); len(pids) > 0 {
			require.NoError(t, syscall.Kill(pids[rng.Intn(len(pids))], syscall.SIGKILL))
		}
	}
	down := 3*time.Second + time.Duration(rng.Intn(7000))*time.Millisecond
	t.Logf("slurmctld down for %s: %s", down, action)
	time.Sleep(down)
	c.startController(t)
	restarted = true
	c.resume(t, id, out, w)
}

func (c *cluster) controllerPid() int {
	b, _ := os.ReadFile(filepath.Join(c.dir, "run", "slurmctld.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func (c *cluster) stopController(t *testing.T) {
	t.Helper()
	pid := c.controllerPid()
	require.NotZero(t, pid, "no slurmctld pid in %s/run", c.dir)
	require.NoError(t, syscall.Kill(pid, syscall.SIGTERM))
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		require.True(t, time.Now().Before(deadline), "slurmctld %d still runs 30 s after SIGTERM", pid)
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *cluster) startController(t *testing.T) {
	t.Helper()
	cmd := exec.Command("slurmctld", "-f", c.conf)
	cmd.Env = append(os.Environ(), "SLURM_CONF="+c.conf)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "slurmctld -f %s: %s", c.conf, b)
	deadline := time.Now().Add(60 * time.Second)
	for c.run(t, "", "/", nil, "scontrol", "ping").code != 0 {
		require.True(t, time.Now().Before(deadline), "slurmctld does not answer 60 s after its start")
		time.Sleep(200 * time.Millisecond)
	}
}

// resume has a job that was struck run again, the way Slurm or its user would: a pending
// one (the agent requeued it) is started, a finished one whose result is out is left, and
// anything else is requeued until it runs again.
func (c *cluster) resume(t *testing.T, id, out string, w campaignWorkload) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	j := c.job(t, id)
	for j.State == "COMPLETING" || j.State == "" {
		require.True(t, time.Now().Before(deadline), "job %s still %q after 60 s", id, j.State)
		time.Sleep(200 * time.Millisecond)
		j = c.job(t, id)
	}
	// A job that printed its result is not requeued, as its user would not: with the disk
	// still full its SIGTERM checkpoint is not written, and the run after would redo the
	// work since the newest generation, result included.
	b, _ := os.ReadFile(out)
	switch {
	case finishedRun(string(b), w):
		t.Logf("job %s finished its work before the fault reached it", id)
	case j.State == "PENDING":
		c.startNow(t, id)
	case j.State == "RUNNING" && j.Restarts > 0:
	default:
		c.runAgain(t, id)
	}
}

// finishedRun tells whether out holds the workload's complete result.
func finishedRun(out string, w campaignWorkload) bool {
	if w.ranks != nil {
		return strings.Contains(out, "step exit 0")
	}
	return strings.Contains(out, w.result)
}
