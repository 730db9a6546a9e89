//go:build integration

package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ctl "github.com/slurm-dmtcp/slurm-dmtcp/proto/control"
)

const otherUser = "sdmtcp2"

// waitScript runs under DMTCP until the file "stop" appears in its folder, and records the
// control socket the plugin handed it.
const waitScript = `#!/bin/bash
echo "socket=$SLURM_DMTCP_CONTROL_SOCKET" > socket.txt
i=0
while [ ! -e stop ]; do i=$((i+1)); echo "tick $i"; sleep 0.5; done
echo "stopped at $i"
`

func (c *cluster) dmtcpctl() string { return filepath.Join(c.dir, "bin", "dmtcpctl") }

// ctlJob runs dmtcpctl as the test user from outside the job (--job ID, through srun).
func (c *cluster) ctlJob(t *testing.T, usr, id string, args ...string) result {
	t.Helper()
	return c.run(t, usr, "/tmp", nil, append([]string{c.dmtcpctl(), "--job", id}, args...)...)
}

func jsonOf[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v), "stdout %q stderr %q", r.stdout, r.stderr)
	return v
}

// startWaitJob submits waitScript and returns the job id and its control socket.
func (c *cluster) startWaitJob(t *testing.T, dir string, args ...string) (string, string) {
	t.Helper()
	script := writeScript(t, dir, "wait.sh", waitScript)
	id := c.sbatch(t, dir, append(append([]string{"--dmtcp", "-o", dir + "/out", "-e", dir + "/err"}, args...), script)...)
	b := waitFile(t, filepath.Join(dir, "socket.txt"), "\n", 60*time.Second)
	sock := strings.TrimSpace(strings.TrimPrefix(b, "socket="))
	require.NotEmpty(t, sock, "SLURM_DMTCP_CONTROL_SOCKET reaches the job")
	waitFile(t, dir+"/out", "tick 2\n", 30*time.Second)
	return id, sock
}

func (c *cluster) stopWaitJob(t *testing.T, dir, id string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stop"), nil, 0o644))
	j := c.waitDone(t, id, 60*time.Second)
	assert.Equal(t, "COMPLETED", j.State)
	time.Sleep(time.Second)
	assert.Empty(t, leftovers(t, id))
}

// Every request, through dmtcpctl --job from outside the job, against the real agent and
// real DMTCP: status, blocking and queued checkpoints, wait, interval within the site's
// minimum, periodic checkpoints at the new interval, generations.
func TestControlRequestsRealJob(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	c.withPolicy(t, "min_interval=2")
	dir := workdir(t)
	id, sock := c.startWaitJob(t, dir)
	uid := uidOf(t, testUser)
	assert.Equal(t, fmt.Sprintf("/tmp/slurm-dmtcp-%d/%s.batch/%s", uid, id, ctl.SocketName), sock)

	r := c.ctlJob(t, testUser, id, "--json", "status")
	require.Equal(t, 0, r.code, r.stderr)
	st := jsonOf[ctl.Status](t, r)
	assert.Equal(t, id, st.JobID)
	assert.Equal(t, ctl.StateRunning, st.State)
	assert.GreaterOrEqual(t, st.Processes, 1)
	assert.NotZero(t, st.Coordinator.Port)
	assert.Equal(t, int64(3600), st.IntervalS, "the site's default interval")
	assert.Equal(t, int64(2), st.MinIntervalS, "min_interval reaches the agent")
	require.NotNil(t, st.NextCheckpoint)
	assert.Empty(t, st.Generations.Generations)

	r = c.ctlJob(t, testUser, id, "status")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "job "+id+" step batch (restart 0): running")
	assert.Contains(t, r.stdout, "interval:        1h0m0s (site minimum 2s)")

	// A blocking checkpoint.
	r = c.ctlJob(t, testUser, id, "--json", "checkpoint", "--timeout", "2m")
	require.Equal(t, 0, r.code, r.stderr)
	ck := jsonOf[ctl.CheckpointResult](t, r)
	assert.Equal(t, ctl.TicketDone, ck.State)
	assert.Equal(t, 1, ck.Generation)
	assert.Positive(t, ck.Bytes)
	m, err := os.ReadFile(filepath.Join(ck.Path, "MANIFEST.json"))
	require.NoError(t, err)
	assert.Contains(t, string(m), `"reason": "request"`)

	// A queued one, then wait for its ticket.
	r = c.ctlJob(t, testUser, id, "--json", "checkpoint", "--no-wait")
	require.Equal(t, 0, r.code, r.stderr)
	q := jsonOf[ctl.CheckpointResult](t, r)
	assert.Contains(t, []string{ctl.TicketQueued, ctl.TicketRunning}, q.State)
	r = c.ctlJob(t, testUser, id, "--json", "wait", fmt.Sprint(q.Ticket))
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, 2, jsonOf[ctl.CheckpointResult](t, r).Generation)
	r = c.ctlJob(t, testUser, id, "wait", "999")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "not_found")

	// The interval: refused below min_interval, then periodic checkpoints at 2s, then none.
	r = c.ctlJob(t, testUser, id, "interval", "1")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "policy: interval 1s is shorter than the site's min_interval 2s")
	r = c.ctlJob(t, testUser, id, "interval", "2s")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "interval 2s (was 1h0m0s)")
	stepDir := filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "batch")
	waitFile(t, dir+"/err", "checkpoint (periodic) generation", 30*time.Second)
	r = c.ctlJob(t, testUser, id, "--json", "interval", "0")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, int64(2), jsonOf[ctl.IntervalResult](t, r).OldS)

	r = c.ctlJob(t, testUser, id, "--json", "generations")
	require.Equal(t, 0, r.code, r.stderr)
	g := jsonOf[ctl.Generations](t, r)
	require.Len(t, g.Generations, 2, "keep=2")
	for _, x := range g.Generations {
		assert.Equal(t, stepDir, filepath.Dir(x.Path))
		assert.Positive(t, x.Bytes)
		assert.Empty(t, x.Error)
	}
	r = c.ctlJob(t, testUser, id, "--json", "status")
	require.Equal(t, 0, r.code, r.stderr)
	st = jsonOf[ctl.Status](t, r)
	assert.Equal(t, int64(0), st.IntervalS)
	assert.Nil(t, st.NextCheckpoint)
	require.NotNil(t, st.LastCheckpoint)
	assert.True(t, st.LastCheckpoint.OK)

	log, err := os.ReadFile(stepDir + "/agent.log")
	require.NoError(t, err)
	assert.Contains(t, string(log), "control socket ready")
	assert.Contains(t, string(log), "checkpoint interval changed through the control socket")
	c.stopWaitJob(t, dir, id)
}

// rawConn talks to the socket directly, as root (the agent lets root in).
func rawConn(t *testing.T, sock string) (*net.UnixConn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	return conn, bufio.NewReader(conn)
}

func readResp(t *testing.T, br *bufio.Reader) (ctl.Response, error) {
	t.Helper()
	line, err := ctl.ReadLine(br, ctl.MaxMessage)
	require.NoError(t, err)
	return ctl.DecodeResponse(line, nil)
}

func codeOf(err error) ctl.Code {
	if e, ok := err.(*ctl.Error); ok {
		return e.Code
	}
	return ""
}

// Malformed, oversized, truncated and slow requests get clear answers and never disturb the
// real agent: it answers status afterwards and the job ends normally.
func TestControlBadRequestsRealAgent(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	dir := workdir(t)
	id, sock := c.startWaitJob(t, dir)

	conn, br := rawConn(t, sock)
	_, _ = conn.Write([]byte("this is not json\n"))
	_, err := readResp(t, br)
	assert.Equal(t, ctl.CodeBadRequest, codeOf(err), "%v", err)
	_, _ = conn.Write([]byte(`{"v":1,"id":5,"op":"format_disk"}` + "\n"))
	_, err = readResp(t, br)
	assert.Equal(t, ctl.CodeUnknownOp, codeOf(err))
	_, _ = conn.Write([]byte(`{"v":9,"op":"status"}` + "\n"))
	_, err = readResp(t, br)
	assert.Equal(t, ctl.CodeUnsupportedVersion, codeOf(err))

	conn, br = rawConn(t, sock)
	go func() { _, _ = conn.Write([]byte(strings.Repeat("A", 4*ctl.MaxMessage))) }()
	_, err = readResp(t, br)
	assert.Equal(t, ctl.CodeTooLarge, codeOf(err))

	conn, br = rawConn(t, sock)
	_, _ = conn.Write([]byte(`{"v":1,"op":"stat`))
	require.NoError(t, conn.CloseWrite())
	_, err = readResp(t, br)
	assert.Equal(t, ctl.CodeBadRequest, codeOf(err))
	assert.ErrorContains(t, err, "truncated")

	// Slow: half a request, then nothing. The agent gives up after ReadTimeout; meanwhile
	// other connections are served.
	slow, slowBr := rawConn(t, sock)
	begin := time.Now()
	_, _ = slow.Write([]byte(`{"v":1,`))
	cl, err := ctl.NewClient(sock)
	require.NoError(t, err)
	var h ctl.Hello
	require.NoError(t, cl.Do(t.Context(), ctl.OpPing, nil, &h))
	assert.Equal(t, id, h.JobID)
	_, err = readResp(t, slowBr)
	assert.Equal(t, ctl.CodeTimeout, codeOf(err))
	assert.Less(t, time.Since(begin), ctl.ReadTimeout+3*time.Second)

	// More connections than the limit: open idle ones until one is told "busy" (a
	// connection the agent just ended may still count for a moment).
	var held []*net.UnixConn
	busy := false
	for i := 0; i < ctl.MaxConns+3 && !busy; i++ {
		hc, hbr := rawConn(t, sock)
		held = append(held, hc)
		_ = hc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if line, err := ctl.ReadLine(hbr, ctl.MaxMessage); err == nil {
			_, err = ctl.DecodeResponse(line, nil)
			require.Equal(t, ctl.CodeBusy, codeOf(err), "%v", err)
			busy = true
		}
	}
	assert.True(t, busy, "told busy")
	assert.LessOrEqual(t, len(held), ctl.MaxConns+1, "busy once the limit was reached")
	for _, h := range held {
		h.Close()
	}
	require.Eventually(t, func() bool { return cl.Do(t.Context(), ctl.OpPing, nil, nil) == nil }, 10*time.Second, 200*time.Millisecond)

	var st ctl.Status
	require.NoError(t, cl.Do(t.Context(), ctl.OpStatus, nil, &st))
	assert.Equal(t, ctl.StateRunning, st.State)
	c.stopWaitJob(t, dir, id)
}

// The socket is the job user's alone: mode 0600 in a 0700 folder; another user cannot
// connect, nor reach the job through srun; the same user from outside any job, or from
// another job, is refused by the agent with a message that says why.
func TestControlPermissionsTwoUsers(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	dir := workdir(t)
	id, sock := c.startWaitJob(t, dir)
	uid := uidOf(t, testUser)

	fi, err := os.Stat(sock)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSocket|0o600, fi.Mode()&(os.ModeSocket|os.ModePerm))
	assert.Equal(t, uint32(uid), fi.Sys().(*syscall.Stat_t).Uid)
	di, err := os.Stat(filepath.Dir(sock))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), di.Mode().Perm())

	// Another user.
	r := c.run(t, otherUser, "/tmp", nil, c.dmtcpctl(), "--socket", sock, "status")
	assert.Equal(t, 3, r.code, r.stderr)
	assert.Contains(t, r.stderr, "permission denied")
	r = c.ctlJob(t, otherUser, id, "status")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "Access/permission denied")

	// The Python client as the other user.
	py := "import slurm_dmtcp as sd\ntry:\n    sd.status()\nexcept sd.Error as e:\n    print('refused:', type(e).__name__, e)\n"
	r = c.run(t, otherUser, "/tmp", []string{"PYTHONPATH=" + filepath.Join(c.dir, "python"), ctl.EnvSocket + "=" + sock}, "python3", "-c", py)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "refused: Error cannot connect to the agent at "+sock)
	assert.Contains(t, r.stdout, "Permission denied")

	// The same user, outside any job.
	r = c.run(t, testUser, "/tmp", nil, c.dmtcpctl(), "--socket", sock, "status")
	assert.Equal(t, 5, r.code, r.stderr)
	assert.Contains(t, r.stderr, "forbidden: process")
	assert.Contains(t, r.stderr, "is not inside a Slurm job")

	r = c.run(t, testUser, "/tmp", []string{"PYTHONPATH=" + filepath.Join(c.dir, "python"), ctl.EnvSocket + "=" + sock}, "python3", "-c", py)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "refused: AgentError forbidden: process")

	// The same user, from another job.
	r = c.run(t, testUser, "/tmp", nil, "srun", "--dmtcp=off", c.dmtcpctl(), "--socket", sock, "checkpoint")
	assert.Equal(t, 5, r.code, r.stderr)
	assert.Contains(t, r.stderr, "; this agent serves job "+id+" only")

	// The job itself, from a step inside it (and root) may.
	r = c.ctlJob(t, testUser, id, "status")
	assert.Equal(t, 0, r.code, r.stderr)
	r = c.run(t, "", "/tmp", nil, c.dmtcpctl(), "--socket", sock, "status")
	assert.Equal(t, 0, r.code, r.stderr)

	stepDir := filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "batch")
	log, err := os.ReadFile(stepDir + "/agent.log")
	require.NoError(t, err)
	assert.Contains(t, string(log), "control socket: connection refused")
	c.stopWaitJob(t, dir, id)
}

// The Python client in a real --dmtcp job: the example sweep driver checkpoints between its
// programs (each a verified generation), reads status, is refused an interval below the
// site's minimum; requeued in the middle, it resumes from the SIGTERM checkpoint and goes
// on talking to the new agent.
func TestPythonClientSweepRealJob(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	dir := workdir(t)
	repo, err := filepath.Abs("../..")
	require.NoError(t, err)
	for f, name := range map[string]string{"contrib/examples/sweep.py": "sweep.py", "contrib/python/slurm_dmtcp/__init__.py": "slurm_dmtcp.py"} {
		b, err := os.ReadFile(filepath.Join(repo, f))
		require.NoError(t, err)
		writeScript(t, dir, name, string(b))
	}
	writeScript(t, dir, "prog.sh", "#!/bin/bash\nfor i in 1 2 3 4 5 6; do sleep 0.5; done\necho \"prog $1 ok\"\n")
	writeScript(t, dir, "probe.py", `import slurm_dmtcp as sd
try:
    sd.set_interval(5)
except sd.AgentError as e:
    print("probe:", e.code, e.message)
st = sd.status()
print("probe: status", st["state"], st["processes"], st["restart_count"])
`)
	script := writeScript(t, dir, "job.sh", `#!/bin/bash
#SBATCH --open-mode=append
export PYTHONPATH=$PWD
python3 probe.py
python3 sweep.py --results results.txt './prog.sh {}' a b c d e
python3 -c 'import slurm_dmtcp as sd; print("after: restart", sd.ping()["restart_count"], "gens", [g.number for g in sd.generations()])'
`)
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "--dmtcp", "-o", out, "-e", errf, script)

	waitFile(t, out, "checkpoint after param b: generation 2", 120*time.Second)
	waitFile(t, out, "run 3/5", 30*time.Second)
	c.requeue(t, id)
	j := c.waitDone(t, id, 180*time.Second)
	assert.Equal(t, "COMPLETED", j.State)
	assert.Equal(t, 1, j.Restarts)

	b, _ := os.ReadFile(out)
	o := string(b)
	e, _ := os.ReadFile(errf)
	assert.Contains(t, o, "probe: policy interval 5s is shorter than the site's min_interval 60s", "stderr: %s", e)
	assert.Contains(t, o, "probe: status running")
	assert.Contains(t, o, "checkpoint after param a: generation 1")
	assert.Contains(t, o, "checkpoint after param b: generation 2")
	assert.Contains(t, o, "checkpoint after param c: generation 4", "the restored driver asks the new agent for checkpoints")
	assert.NotContains(t, o, "failed; going on")
	assert.Contains(t, o, "prog e ok")
	assert.Contains(t, o, "sweep: all 5 done, 0 failed")
	assert.Contains(t, o, "after: restart 1 gens", "the restored driver's later processes reach the new agent")
	for _, p := range []string{"a", "b", "c", "d", "e"} {
		assert.Equal(t, 1, strings.Count(o, "param "+p+" done"), "param %s finished once:\n%s", p, o)
	}
	assert.Contains(t, string(e), "slurm-dmtcp: checkpoint (signal) generation 3")
	assert.Contains(t, string(e), "restart 1: restoring generation 3")
	// The driver was checkpointed while it waited on the socket: the agent let go of it.
	log, err := os.ReadFile(filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "batch", "agent.log"))
	require.NoError(t, err)
	assert.Contains(t, string(log), "the peer is being checkpointed by DMTCP")
	for _, m := range regexp.MustCompile(`([0-9.]+)s from request to commit`).FindAllStringSubmatch(o, -1) {
		var s float64
		fmt.Sscan(m[1], &s)
		assert.Less(t, s, 10.0, "a checkpoint the driver asked for is not held up by its own connection")
	}
	res, _ := os.ReadFile(dir + "/results.txt")
	assert.Equal(t, "a 0\nb 0\nc 0\nd 0\ne 0\n", string(res))
}

func uidOf(t *testing.T, name string) int {
	t.Helper()
	u, err := user.Lookup(name)
	require.NoError(t, err)
	uid, err := strconv.Atoi(u.Uid)
	require.NoError(t, err)
	return uid
}

// dmtcpctl from the batch script itself (a process under DMTCP starts it): the checkpoint
// completes without waiting for dmtcpctl (static, not under DMTCP, and rid of the DMTCP
// descriptors it inherited); restored from that very checkpoint, the script goes on after
// dmtcpctl with exit code 0.
func TestDmtcpctlInsideBatchScript(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	dir := workdir(t)
	script := writeScript(t, dir, "job.sh", fmt.Sprintf(`#!/bin/bash
#SBATCH --open-mode=append
echo "start restart=${SLURM_RESTART_COUNT:-0}"
%s checkpoint --timeout 2m; echo "dmtcpctl rc=$?"
for i in $(seq 1 30); do sleep 0.5; echo "i=$i"; done
echo end
`, c.dmtcpctl()))
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "--dmtcp", "-o", out, "-e", errf, script)
	waitFile(t, out, "dmtcpctl rc=0\n", 60*time.Second)
	o := waitFile(t, out, "i=2\n", 30*time.Second)
	assert.Contains(t, o, "checkpoint done: generation 1")

	// Requeue: the SIGTERM checkpoint is generation 2; damage it so the job restores
	// generation 1, taken while the script waited for dmtcpctl.
	r := c.run(t, "", "/", nil, "scontrol", "requeue", id)
	require.Equal(t, 0, r.code, r.stderr)
	c.waitState(t, id, 30*time.Second, "PENDING")
	gen2 := filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "batch", "gen-000002")
	images, _ := filepath.Glob(gen2 + "/ckpt_*.dmtcp")
	require.NotEmpty(t, images, "SIGTERM checkpoint")
	f, err := os.OpenFile(images[0], os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("X"), 100)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	c.startNow(t, id)
	j := c.waitDone(t, id, 120*time.Second)
	assert.Equal(t, "COMPLETED", j.State)

	b, _ := os.ReadFile(out)
	e, _ := os.ReadFile(errf)
	assert.Contains(t, string(e), "restart 1: restoring generation 1")
	assert.Equal(t, 1, strings.Count(string(b), "start restart="), "restored, not started again:\n%s", b)
	assert.Equal(t, 2, strings.Count(string(b), "dmtcpctl rc=0\n"), "the restored script goes on after dmtcpctl:\n%s", b)
	assert.True(t, strings.HasSuffix(string(b), "i=30\nend\n"), "%s", b)
}

// Status answers while a real checkpoint runs (gzip of incompressible memory makes it take
// seconds), and says so.
func TestControlStatusDuringCheckpoint(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	c.withPolicy(t, "compress=on")
	dir := workdir(t)
	writeScript(t, dir, "mem.py", "import os, time\nb = os.urandom(96 << 20)\nopen('ready', 'w').close()\ntime.sleep(120)\n")
	script := writeScript(t, dir, "job.sh", "#!/bin/bash\necho \"socket=$SLURM_DMTCP_CONTROL_SOCKET\" > socket.txt\nexec python3 mem.py\n")
	id := c.sbatch(t, dir, "--dmtcp", "-o", dir+"/out", "-e", dir+"/err", script)
	sock := strings.TrimSpace(strings.TrimPrefix(waitFile(t, dir+"/socket.txt", "\n", 60*time.Second), "socket="))
	waitFile(t, dir+"/ready", "", 60*time.Second)
	cl, err := ctl.NewClient(sock) // as root, which the agent lets in
	require.NoError(t, err)

	var q ctl.CheckpointResult
	require.NoError(t, cl.Do(t.Context(), ctl.OpCheckpoint, nil, &q))
	seen := 0
	var slowest time.Duration
	for i := 0; i < 600; i++ {
		begin := time.Now()
		var st ctl.Status
		require.NoError(t, cl.Do(t.Context(), ctl.OpStatus, nil, &st))
		if d := time.Since(begin); d > slowest {
			slowest = d
		}
		if st.State == ctl.StateCheckpointing {
			seen++
			require.NotNil(t, st.InProgress)
			assert.Equal(t, "request", st.InProgress.Reason)
			assert.Equal(t, q.Ticket, st.InProgress.Ticket)
		} else if seen > 0 {
			require.NotNil(t, st.LastCheckpoint)
			assert.True(t, st.LastCheckpoint.OK)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	assert.GreaterOrEqual(t, seen, 3, "status answered during the checkpoint")
	assert.Less(t, slowest, 3*time.Second, "status never waits for the checkpoint")
	t.Logf("status answered %d times during the checkpoint; slowest answer %s", seen, slowest)
	var r ctl.CheckpointResult
	require.NoError(t, cl.Do(t.Context(), ctl.OpWait, ctl.WaitArgs{Ticket: q.Ticket}, &r))
	assert.Equal(t, ctl.TicketDone, r.State)
	c.run(t, "", "/", nil, "scancel", id)
}

// A driver restored from the very checkpoint it asked for returns from checkpoint() with
// restored=True and goes on. (Slurm's SIGTERM checkpoint, newer, is damaged here so that the
// job restores the requested one, as after a node failure.)
func TestPythonCheckpointReturnsRestored(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	dir := workdir(t)
	repo, err := filepath.Abs("../..")
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(repo, "contrib/python/slurm_dmtcp/__init__.py"))
	require.NoError(t, err)
	writeScript(t, dir, "slurm_dmtcp.py", string(b))
	writeScript(t, dir, "drv.py", `import time, slurm_dmtcp as sd
state = {"x": 41}
print("before", sd.ping()["restart_count"], flush=True)
ck = sd.checkpoint(timeout=120)
state["x"] += 1
print("checkpoint returned: state=%s restored=%s generation=%d x=%d restart=%d" % (ck.state, ck.restored, ck.generation, state["x"], sd.ping()["restart_count"]), flush=True)
for i in range(20):
    time.sleep(0.5)
    print("i=%d" % i, flush=True)
print("end", flush=True)
`)
	script := writeScript(t, dir, "job.sh", "#!/bin/bash\n#SBATCH --open-mode=append\nexport PYTHONPATH=$PWD\nexec python3 drv.py\n")
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "--dmtcp", "-o", out, "-e", errf, script)
	waitFile(t, out, "checkpoint returned: state=done restored=False generation=1 x=42 restart=0", 60*time.Second)
	waitFile(t, out, "i=1\n", 30*time.Second)
	r := c.run(t, "", "/", nil, "scontrol", "requeue", id)
	require.Equal(t, 0, r.code, r.stderr)
	c.waitState(t, id, 30*time.Second, "PENDING")
	gen2 := filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "batch", "gen-000002")
	images, _ := filepath.Glob(gen2 + "/ckpt_*.dmtcp")
	require.NotEmpty(t, images, "SIGTERM checkpoint")
	f, err := os.OpenFile(images[0], os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("X"), 100)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	c.startNow(t, id)
	j := c.waitDone(t, id, 120*time.Second)
	ob, _ := os.ReadFile(out)
	eb, _ := os.ReadFile(errf)
	assert.Equal(t, "COMPLETED", j.State, "out:\n%s\nerr:\n%s", ob, eb)
	assert.Contains(t, string(eb), "restart 1: restoring generation 1")
	assert.Contains(t, string(ob), "checkpoint returned: state=restored restored=True generation=1 x=42 restart=1",
		"out:\n%s\nerr:\n%s", ob, eb)
	assert.Equal(t, 1, strings.Count(string(ob), "before"), "resumed, not started again")
	assert.True(t, strings.HasSuffix(string(ob), "i=19\nend\n"), "%s", ob)
}
