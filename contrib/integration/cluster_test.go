//go:build integration

// Package integration runs real jobs with real sbatch and srun on the cluster that
// contrib/cluster/cluster-up.sh starts, with the freshly built plugin. Run as root
// (it submits as the test users and rewrites the cluster's plugstack.conf per test):
//
//	make cluster-up && go test -tags integration ./contrib/integration/
package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/coordinator"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
)

const testUser = "sdmtcp"

// policyMu serialises tests that change plugstack.conf.
var policyMu sync.Mutex

type cluster struct {
	dir, conf, plugstack string
	baseLine             string
	// The cluster's Slurm release (scontrol --version), read once by slurmAtMost.
	slurmOnce              sync.Once
	slurmMajor, slurmMinor int
}

// parseSlurmRelease reads the major and minor release of scontrol --version
// ("slurm 24.11.5", "slurm-wlm 22.05.8").
func parseSlurmRelease(out string) (major, minor int, err error) {
	m := regexp.MustCompile(`^slurm(?:-wlm)? (\d+)\.(\d+)\b`).FindStringSubmatch(strings.TrimSpace(out))
	if m == nil {
		return 0, 0, fmt.Errorf("scontrol --version: no release in %q", out)
	}
	major, _ = strconv.Atoi(m[1])
	minor, _ = strconv.Atoi(m[2])
	return major, minor, nil
}

// slurmAtMost says whether the cluster's Slurm is release major.minor or older.
func (c *cluster) slurmAtMost(t *testing.T, major, minor int) bool {
	t.Helper()
	c.slurmOnce.Do(func() {
		r := c.run(t, "", "/", nil, "scontrol", "--version")
		var err error
		c.slurmMajor, c.slurmMinor, err = parseSlurmRelease(r.stdout)
		require.NoError(t, err)
	})
	return c.slurmMajor < major || (c.slurmMajor == major && c.slurmMinor <= minor)
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: integration tests run as root (they submit as test users and set the cluster's policy)")
	}
	dir := os.Getenv("CLUSTER_DIR")
	if dir == "" {
		dir = "/var/tmp/slurm-dmtcp-cluster"
	}
	c := &cluster{dir: dir, conf: filepath.Join(dir, "slurm.conf"), plugstack: filepath.Join(dir, "plugstack.conf")}
	line, err := os.ReadFile(c.plugstack)
	require.NoError(t, err, "no cluster in %s: run make cluster-up first", dir)
	c.baseLine = strings.TrimSpace(string(line))
	return c
}

// withPolicy appends plugstack arguments for the rest of the test (later keys win).
func (c *cluster) withPolicy(t *testing.T, args string) {
	t.Helper()
	policyMu.Lock()
	require.NoError(t, os.WriteFile(c.plugstack, []byte(c.baseLine+" "+args+"\n"), 0o644))
	t.Cleanup(func() {
		_ = os.WriteFile(c.plugstack, []byte(c.baseLine+"\n"), 0o644)
		policyMu.Unlock()
	})
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs a Slurm client command as user ("" = root) in dir with extra environment.
func (c *cluster) run(t *testing.T, usr, dir string, env []string, args ...string) result {
	t.Helper()
	full := args
	if usr != "" {
		full = append([]string{"runuser", "-u", usr, "--"}, args...)
	}
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "SLURM_CONF="+c.conf), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err, "run %v", args)
	}
	return result{out.String(), errb.String(), code}
}

// workdir is a fresh folder owned by the test user.
func workdir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/tmp", "sdmtcp-it-")
	require.NoError(t, err)
	u, err := user.Lookup(testUser)
	require.NoError(t, err, "test user %s: run make cluster-up", testUser)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	require.NoError(t, os.Chown(d, uid, gid))
	t.Cleanup(func() { removeUnlessFailed(t, d) })
	return d
}

// removeUnlessFailed removes a test's work folder, or keeps it, named in the log, when the
// test failed: its job output and scripts are what explains the failure.
func removeUnlessFailed(t *testing.T, d string) {
	if t.Failed() {
		t.Logf("work folder kept: %s", d)
		return
	}
	_ = os.RemoveAll(d)
}

func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(body), 0o755))
	return p
}

var jobIDRE = regexp.MustCompile(`^(\d+)`)

func (c *cluster) sbatch(t *testing.T, dir string, args ...string) string {
	t.Helper()
	r := c.run(t, testUser, dir, nil, append([]string{"sbatch", "--parsable"}, args...)...)
	require.Equal(t, 0, r.code, "sbatch %v: %s", args, r.stderr)
	m := jobIDRE.FindStringSubmatch(strings.TrimSpace(r.stdout))
	require.NotNil(t, m, "sbatch printed %q", r.stdout)
	t.Cleanup(func() {
		c.run(t, "", "/", nil, "scancel", m[1])
		// The job's checkpoints are kept after a job by design; a test's are not needed.
		if u, err := user.Lookup(testUser); err == nil {
			jobDir := filepath.Join(u.HomeDir, ".slurm-dmtcp", m[1])
			if t.Failed() {
				logAgents(t, jobDir)
			}
			_ = os.RemoveAll(jobDir)
		}
	})
	return m[1]
}

// logAgents prints the agent logs of a job, so that a failure seen only in CI shows what
// the agents did.
func logAgents(t *testing.T, jobDir string) {
	logs, _ := filepath.Glob(filepath.Join(jobDir, "*", "agent.log"))
	for _, l := range logs {
		if b, err := os.ReadFile(l); err == nil {
			t.Logf("%s:\n%s", l, b)
		}
	}
}

type jobInfo struct {
	State    string
	ExitCode string
	Restarts int
}

func (c *cluster) job(t *testing.T, id string) jobInfo {
	t.Helper()
	r := c.run(t, "", "/", nil, "scontrol", "show", "job", "-o", id)
	rec := slurm.ParseRecord(r.stdout)
	j := jobInfo{State: rec.Value("JobState"), ExitCode: rec.Value("ExitCode")}
	j.Restarts, _ = strconv.Atoi(rec.Value("Restarts"))
	return j
}

// waitState polls until the job reaches one of the states or the timeout passes.
func (c *cluster) waitState(t *testing.T, id string, timeout time.Duration, states ...string) jobInfo {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var j jobInfo
	for time.Now().Before(deadline) {
		j = c.job(t, id)
		for _, s := range states {
			if j.State == s {
				return j
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("job %s: state %q after %s, want one of %v", id, j.State, timeout, states)
	return j
}

func (c *cluster) waitDone(t *testing.T, id string, timeout time.Duration) jobInfo {
	return c.waitState(t, id, timeout, "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY")
}

// startNow makes a requeued job, which waits for its credential to expire, start as soon as
// it may.
func (c *cluster) startNow(t *testing.T, id string) {
	t.Helper()
	// slurmd refuses a launch in the same second as the previous run's kill ("Job credential
	// revoked", times in whole seconds) and the job then fails: let that second pass.
	time.Sleep(2 * time.Second)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && c.job(t, id).State == "PENDING" {
		c.run(t, "", "/", nil, "scontrol", "update", "JobId="+id, "StartTime=now")
		time.Sleep(time.Second)
	}
}

// waitFile waits for a file to contain want.
func waitFile(t *testing.T, path, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var b []byte
	for time.Now().Before(deadline) {
		b, _ = os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return string(b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: no %q after %s; it holds:\n%s", path, want, timeout, b)
	return ""
}

// needDMTCP returns the real DMTCP install or skips with one line saying why.
func needDMTCP(t *testing.T) coordinator.Install {
	t.Helper()
	inst, err := coordinator.Find(os.Getenv("DMTCP_PREFIX"), os.Getenv("PATH"))
	if err != nil {
		t.Skipf("SKIP: needs real DMTCP: %v", err)
	}
	return inst
}

func homeOf(t *testing.T, name string) string {
	u, err := user.Lookup(name)
	require.NoError(t, err)
	return u.HomeDir
}

// leftovers lists processes of the agent or a coordinator that mention the job's folders.
func leftovers(t *testing.T, jobID string) []string {
	t.Helper()
	out, _ := exec.Command("ps", "-eo", "pid,args").Output()
	var left []string
	for _, l := range strings.Split(string(out), "\n") {
		if (strings.Contains(l, "slurm-dmtcp-agent") && strings.Contains(l, "--job-id="+jobID+" ")) ||
			(strings.Contains(l, "dmtcp_coordinator") && strings.Contains(l, "/"+jobID+".")) {
			left = append(left, strings.TrimSpace(l))
		}
	}
	return left
}
