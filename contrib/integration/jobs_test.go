//go:build integration

package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// probeScript prints what a task can see of DMTCP, then exits with code 7.
const probeScript = `#!/bin/bash
echo "args=[$1][$2]"
echo "cwd=$(pwd)"
echo "dmtcp_loaded=$(grep -c libdmtcp /proc/self/maps)"
echo "pid=$$"
echo "port=${SLURM_DMTCP_COORD_PORT:-none}"
echo "ckptdir=${SLURM_DMTCP_CKPTDIR:-none}"
echo "stderr line" >&2
%s
exit 7
`

func TestJobWithoutDMTCPIsUntouched(t *testing.T) {
	c := newCluster(t)
	dir := workdir(t)
	script := writeScript(t, dir, "plain.sh", strings.Replace(probeScript, "%s", "", 1))
	id := c.sbatch(t, dir, "-o", dir+"/out", "-e", dir+"/err", script, "one", "two words")
	j := c.waitDone(t, id, 30*time.Second)
	assert.Equal(t, "7:0", j.ExitCode)
	out, _ := os.ReadFile(dir + "/out")
	assert.Contains(t, string(out), "args=[one][two words]")
	assert.Contains(t, string(out), "cwd="+dir)
	assert.Contains(t, string(out), "dmtcp_loaded=0")
	assert.Contains(t, string(out), "port=none")
	errb, _ := os.ReadFile(dir + "/err")
	assert.Equal(t, "stderr line\n", string(errb))
	_, err := os.Stat(filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id))
	assert.True(t, os.IsNotExist(err), "a job without --dmtcp got a checkpoint folder")

	r := c.run(t, testUser, dir, nil, "srun", "bash", "-c", "grep -c libdmtcp /proc/self/maps; exit 3")
	assert.Equal(t, 3, r.code)
	assert.Equal(t, "0\n", r.stdout)
}

// A --dmtcp batch job: the script and its children run under DMTCP joined to the job's own
// coordinator; argv, folder, stdout/stderr and exit code are the application's own; a
// checkpoint writes images into the policy folder; at the end nothing is left behind.
func TestBatchJobRunsUnderDMTCP(t *testing.T) {
	c := newCluster(t)
	inst := needDMTCP(t)
	dir := workdir(t)
	script := writeScript(t, dir, "job.sh", strings.Replace(probeScript, "%s",
		`echo started > `+dir+`/started; while [ ! -e `+dir+`/go ]; do sleep 0.2; done`, 1))
	id := c.sbatch(t, dir, "--dmtcp", "-o", dir+"/out", "-e", dir+"/err", script, "one", "two words")
	waitFile(t, dir+"/started", "started", 60*time.Second)

	out := waitFile(t, dir+"/out", "ckptdir=", 10*time.Second)
	assert.Contains(t, out, "args=[one][two words]")
	assert.Contains(t, out, "cwd="+dir)
	assert.Regexp(t, `dmtcp_loaded=[1-9]`, out)
	assert.Regexp(t, `pid=4\d{4}\n`, out, "DMTCP gives virtual pids from 40000")
	stepDir := filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "batch")
	assert.Contains(t, out, "ckptdir="+stepDir+"/.current")
	port := regexp.MustCompile(`port=(\d+)`).FindStringSubmatch(out)
	require.NotNil(t, port)

	// The coordinator lists the job's processes (the script and its sleep).
	lst := c.run(t, testUser, dir, nil, inst.Command, "-h", "127.0.0.1", "-p", port[1], "-l")
	require.Equal(t, 0, lst.code, lst.stderr)
	assert.Regexp(t, `bash\[4\d+:\d+\]`, lst.stdout)

	// A checkpoint writes images into the policy folder, private to the user.
	ck := c.run(t, testUser, dir, nil, inst.Command, "-h", "127.0.0.1", "-p", port[1], "-bc")
	require.Equal(t, 0, ck.code, ck.stderr)
	images, _ := filepath.Glob(stepDir + "/.current/ckpt_*.dmtcp")
	assert.NotEmpty(t, images, "no image in %s", stepDir)
	for _, d := range []string{filepath.Dir(stepDir), stepDir, stepDir + "/.current"} {
		st, err := os.Stat(d)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), st.Mode().Perm(), d)
	}

	require.NoError(t, os.WriteFile(dir+"/go", nil, 0o644))
	j := c.waitDone(t, id, 30*time.Second)
	assert.Equal(t, "FAILED", j.State)
	assert.Equal(t, "7:0", j.ExitCode, "the application's exit code")
	errb, _ := os.ReadFile(dir + "/err")
	assert.Equal(t, "stderr line\n", string(errb), "the error file holds only the application's output")

	// Clean shutdown: agent and coordinator gone, runtime folder removed, log says so.
	assert.Eventually(t, func() bool { return len(leftovers(t, id)) == 0 }, 10*time.Second, 200*time.Millisecond,
		"left running: %v", leftovers(t, id))
	rt, _ := filepath.Glob("/tmp/slurm-dmtcp-*/" + id + ".batch")
	assert.Empty(t, rt, "runtime folder left behind")
	log, err := os.ReadFile(stepDir + "/agent.log")
	require.NoError(t, err)
	assert.Contains(t, string(log), "coordinator ready")
	assert.Contains(t, string(log), "agent stopped cleanly")
	assert.Contains(t, string(log), "job_id="+id)
	assert.Contains(t, string(log), "user="+testUser)
}

func TestSrunStepsUnderDMTCP(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	dir := workdir(t)
	// srun --dmtcp on its own: one agent for the step.
	r := c.run(t, testUser, dir, nil, "srun", "--dmtcp", "bash", "-c",
		`echo loaded=$(grep -c libdmtcp /proc/self/maps) pid=$$ cwd=$(pwd) arg="$0"; exit 4`, "x y")
	assert.Equal(t, 4, r.code, r.stderr)
	assert.Regexp(t, `loaded=[1-9] pid=4\d{4} cwd=`+dir+` arg=x y`, r.stdout)

	// srun inside a --dmtcp batch job: the step's tasks join the job's coordinator.
	script := writeScript(t, dir, "steps.sh", `#!/bin/bash
echo batch_port=$SLURM_DMTCP_COORD_PORT
srun bash -c 'echo step_port=$SLURM_DMTCP_COORD_PORT step_loaded=$(grep -c libdmtcp /proc/self/maps)'
echo srun_rc=$?
`)
	id := c.sbatch(t, dir, "--dmtcp", "-o", dir+"/steps.out", script)
	j := c.waitDone(t, id, 60*time.Second)
	assert.Equal(t, "COMPLETED", j.State)
	out, _ := os.ReadFile(dir + "/steps.out")
	m := regexp.MustCompile(`batch_port=(\d+)\nstep_port=(\d+) step_loaded=([0-9]+)\nsrun_rc=0`).FindStringSubmatch(string(out))
	require.NotNil(t, m, "output: %s", out)
	assert.Equal(t, m[1], m[2], "the step joined the batch job's coordinator")
	assert.NotEqual(t, "0", m[3])
}

func TestSiteDefaultOnAndOptOut(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	c.withPolicy(t, "default=on")
	dir := workdir(t)
	r := c.run(t, testUser, dir, nil, "srun", "bash", "-c", "grep -c libdmtcp /proc/self/maps; true")
	require.Equal(t, 0, r.code, r.stderr)
	assert.NotEqual(t, "0\n", r.stdout, "default=on: a job without options runs under DMTCP")
	r = c.run(t, testUser, dir, nil, "srun", "--dmtcp=off", "bash", "-c", "grep -c libdmtcp /proc/self/maps; true")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "0\n", r.stdout, "--dmtcp=off opts out")
	// Jobs of root are left alone under default=on.
	r = c.run(t, "", dir, nil, "srun", "bash", "-c", "grep -c libdmtcp /proc/self/maps; true")
	assert.Equal(t, "0\n", r.stdout)
}

func TestPeriodicCheckpoints(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	c.withPolicy(t, "min_interval=1")
	dir := workdir(t)
	// A fork every 0.25 s under checkpoints every 2 s made DMTCP 5.0 itself exit 99 (an
	// assertion) in 2 of about 10 runs; one fork a second keeps this test about the agent.
	script := writeScript(t, dir, "loop.sh", "#!/bin/bash\nfor i in $(seq 1 12); do sleep 1; echo $i; done\necho done\n")
	id := c.sbatch(t, dir, "--dmtcp-interval=2s", "-o", dir+"/out", "-e", dir+"/err", script)
	j := c.waitDone(t, id, 120*time.Second)
	assert.Equal(t, "COMPLETED", j.State)
	out, _ := os.ReadFile(dir + "/out")
	assert.True(t, strings.HasSuffix(string(out), "11\n12\ndone\n"), "the loop ran to its end through the checkpoints: %s", out)
	stepDir := filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "batch")
	log, err := os.ReadFile(stepDir + "/agent.log")
	require.NoError(t, err)
	n := strings.Count(string(log), `msg="checkpoint written"`)
	assert.GreaterOrEqual(t, n, 2, "log:\n%s", log)
	assert.Contains(t, string(log), "interval=2s")
	// Each periodic checkpoint became a verified generation; keep=2 of them remain.
	gens, _ := filepath.Glob(stepDir + "/gen-*")
	assert.Len(t, gens, 2)
	for _, g := range gens {
		images, _ := filepath.Glob(g + "/ckpt_*.dmtcp")
		assert.NotEmpty(t, images, g)
		m, err := os.ReadFile(g + "/MANIFEST.json")
		require.NoError(t, err)
		assert.Contains(t, string(m), `"reason": "periodic"`)
	}
	errb, _ := os.ReadFile(dir + "/err")
	assert.GreaterOrEqual(t, strings.Count(string(errb), "slurm-dmtcp: checkpoint (periodic) generation"), 2, "err: %s", errb)
}

// With DMTCP missing on the node, the job fails at once with a message in its error file
// that names what is missing and where it was looked for.
func TestMissingDMTCPFailsFast(t *testing.T) {
	c := newCluster(t)
	c.withPolicy(t, "dmtcp_prefix=/nonexistent/dmtcp")
	dir := workdir(t)
	start := time.Now()
	id := c.sbatch(t, dir, "--dmtcp", "-o", dir+"/out", "-e", dir+"/err", "--wrap", "echo ran")
	j := c.waitDone(t, id, 30*time.Second)
	assert.Less(t, time.Since(start), 20*time.Second)
	assert.Equal(t, "FAILED", j.State)
	assert.Equal(t, "125:0", j.ExitCode)
	errb, _ := os.ReadFile(dir + "/err")
	assert.Contains(t, string(errb), "slurm-dmtcp: cannot run")
	assert.Contains(t, string(errb), "DMTCP not found")
	assert.Contains(t, string(errb), "/nonexistent/dmtcp/bin")
	rt, _ := filepath.Glob("/tmp/slurm-dmtcp-*/" + id + ".batch")
	assert.Empty(t, rt, "a failed agent left its runtime folder")
	out, _ := os.ReadFile(dir + "/out")
	assert.NotContains(t, string(out), "ran")

	r := c.run(t, testUser, dir, nil, "srun", "--dmtcp", "true")
	assert.Equal(t, 125, r.code)
	assert.Contains(t, r.stderr, "DMTCP not found")
	assert.Empty(t, leftovers(t, id))
}

// The agent answers slurmstepd before its coordinator runs (the tasks' dmtcp_launch waits in
// the queue of the coordinator's socket): a coordinator that fails at start ends the tasks
// with the coordinator's own words, and nothing is left (a DMTCP whose dmtcp_coordinator
// cannot start: the real programs but for it).
func TestCoordinatorFailingAtStartEndsTheTasks(t *testing.T) {
	inst := needDMTCP(t)
	c := newCluster(t)
	prefix := workdir(t)
	require.NoError(t, os.Chmod(prefix, 0o755))
	require.NoError(t, os.Mkdir(filepath.Join(prefix, "bin"), 0o755))
	for _, p := range []string{inst.Launch, inst.Command, inst.Restart} {
		require.NoError(t, os.Symlink(p, filepath.Join(prefix, "bin", filepath.Base(p))))
	}
	require.NoError(t, os.WriteFile(filepath.Join(prefix, "bin", "dmtcp_coordinator"),
		[]byte("#!/bin/sh\necho 'cannot listen: the test says no' >&2\nexit 3\n"), 0o755))
	c.withPolicy(t, "dmtcp_prefix="+prefix)
	dir := workdir(t)
	// Folders that other tests' steps left are not this one's.
	const leftovers = "/tmp/slurm-dmtcp-*/*.step-*/coordinator.failed"
	earlier, _ := filepath.Glob(leftovers)

	r := c.run(t, testUser, dir, nil, "srun", "--dmtcp", "--job-name=coordfail", "echo", "ran")
	assert.Equal(t, 125, r.code, "stderr: %s", r.stderr)
	assert.Contains(t, r.stderr, "slurm-dmtcp: cannot run echo under DMTCP: the step's coordinator did not start")
	assert.Contains(t, r.stderr, "cannot listen: the test says no")
	assert.NotContains(t, r.stdout, "ran")
	// The agent did not remove its folder: slurmstepd's exit callback does, after srun has
	// the tasks' exit and returned, so it may take a moment still.
	var left []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		now, _ := filepath.Glob(leftovers)
		left = newPaths(earlier, now)
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	assert.Empty(t, left, "a runtime folder was left")
}

// newPaths returns the paths of now that were not in before.
func newPaths(before, now []string) []string {
	seen := make(map[string]bool, len(before))
	for _, p := range before {
		seen[p] = true
	}
	var fresh []string
	for _, p := range now {
		if !seen[p] {
			fresh = append(fresh, p)
		}
	}
	return fresh
}

// A broken agent path is also a clear, fast failure.
func TestBrokenAgentFailsFast(t *testing.T) {
	c := newCluster(t)
	c.withPolicy(t, "agent=/nonexistent/slurm-dmtcp-agent")
	r := c.run(t, testUser, "/tmp", nil, "srun", "--dmtcp", "true")
	assert.Equal(t, 125, r.code)
	assert.Contains(t, r.stderr, "cannot execute the agent /nonexistent/slurm-dmtcp-agent")
}
