//go:build integration

package integration

import (
	"bufio"
	"fmt"
	"io"
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
)

// Security suite (issue 6): the agent never runs as root; one user cannot read, restore or
// control another user's checkpoints, runtime folder, agent or coordinator; symbolic links
// planted in checkpoint and runtime paths are refused, never followed by root; valgrind
// finds nothing of the plugin's own in srun and sbatch.

// waitingScript prints what the victim's job is, then waits for dir/go.
const waitingScript = `#!/bin/bash
echo "port=${SLURM_DMTCP_COORD_PORT:-none}"
echo "rundir=${SLURM_DMTCP_RUNDIR:-none}"
echo "secret of the first user"
while [ ! -e %s/go ]; do sleep 0.2; done
`

// idsOf returns the uid and gid of a user.
func idsOf(t *testing.T, name string) (int, int) {
	t.Helper()
	r, err := exec.Command("id", "-u", name).Output()
	require.NoError(t, err, "user %s: run make cluster-up", name)
	g, err := exec.Command("id", "-g", name).Output()
	require.NoError(t, err)
	uid, _ := strconv.Atoi(strings.TrimSpace(string(r)))
	gid, _ := strconv.Atoi(strings.TrimSpace(string(g)))
	return uid, gid
}

// procIDs reads the real, effective, saved and file-system uids and gids and the
// supplementary groups of a process.
func procIDs(t *testing.T, pid string) (uids, gids, groups []int) {
	t.Helper()
	f, err := os.Open("/proc/" + pid + "/status")
	require.NoError(t, err)
	defer f.Close()
	nums := func(s string) []int {
		var v []int
		for _, w := range strings.Fields(s) {
			n, _ := strconv.Atoi(w)
			v = append(v, n)
		}
		return v
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		switch k {
		case "Uid":
			uids = nums(v)
		case "Gid":
			gids = nums(v)
		case "Groups":
			groups = nums(v)
		}
	}
	return
}

// startVictim submits a --dmtcp job of the test user that waits, and returns its id, work
// folder, port and runtime folder once it runs.
func startVictim(t *testing.T, c *cluster, args ...string) (id, dir, port, runDir string) {
	t.Helper()
	dir = workdir(t)
	require.NoError(t, os.Chmod(dir, 0o700))
	script := writeScript(t, dir, "victim.sh", strings.Replace(waitingScript, "%s", dir, 1))
	id = c.sbatch(t, dir, append(append([]string{"--dmtcp", "-o", dir + "/out", "-e", dir + "/err"}, args...), script)...)
	out := waitFile(t, dir+"/out", "secret of the first user", 60*time.Second)
	m := regexp.MustCompile(`port=(\d+)`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	rd := regexp.MustCompile(`rundir=(\S+)`).FindStringSubmatch(out)
	require.NotNil(t, rd, out)
	t.Cleanup(func() { _ = os.WriteFile(dir+"/go", nil, 0o644) })
	return id, dir, m[1], rd[1]
}

// workdirOf is a fresh folder owned by user.
func workdirOf(t *testing.T, name string) string {
	t.Helper()
	d, err := os.MkdirTemp("/tmp", "sdmtcp-it-")
	require.NoError(t, err)
	uid, gid := idsOf(t, name)
	require.NoError(t, os.Chown(d, uid, gid))
	t.Cleanup(func() { removeUnlessFailed(t, d) })
	return d
}

// pidsOf returns the pids of the job's agent and coordinator (see leftovers).
func pidsOf(t *testing.T, id string) (agent, coord []string) {
	t.Helper()
	for _, l := range leftovers(t, id) {
		pid, args, _ := strings.Cut(l, " ")
		if strings.Contains(args, "slurm-dmtcp-agent") {
			agent = append(agent, pid)
		} else {
			coord = append(coord, pid)
		}
	}
	return
}

// The agent and the coordinator it starts run as the job's user: every uid and gid (real,
// effective, saved, file system) is the user's, and root's group is not among its groups.
// With the site default on, root's own jobs get no agent and no DMTCP.
func TestSecurityAgentNeverRoot(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	uid, gid := idsOf(t, testUser)
	id, _, _, _ := startVictim(t, c)
	agent, coord := pidsOf(t, id)
	require.Len(t, agent, 1, "the job's agent: %v", leftovers(t, id))
	require.NotEmpty(t, coord, "the job's coordinator: %v", leftovers(t, id))
	for _, pid := range append(agent, coord...) {
		uids, gids, groups := procIDs(t, pid)
		assert.Equal(t, []int{uid, uid, uid, uid}, uids, "uids of pid %s", pid)
		assert.Equal(t, []int{gid, gid, gid, gid}, gids, "gids of pid %s", pid)
		assert.NotContains(t, groups, 0, "groups of pid %s", pid)
	}

	// Started as root by anything, the agent refuses at once and creates nothing.
	scratch := rootOnlyDir(t)
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	agentCmd := exec.Command(filepath.Join(c.dir, "bin", "slurm-dmtcp-agent"), "--protocol=1", "--job-id=999999", "--step=batch",
		"--checkpoint-dir="+scratch+"/ckpt/%j", "--runtime-dir="+scratch)
	agentCmd.ExtraFiles = []*os.File{pw}
	var agentErr strings.Builder
	agentCmd.Stderr = &agentErr
	runErr := agentCmd.Run()
	pw.Close()
	msg, _ := io.ReadAll(pr)
	pr.Close()
	var ee *exec.ExitError
	require.ErrorAs(t, runErr, &ee, "the agent ran as root: %s", agentErr.String())
	assert.Equal(t, 1, ee.ExitCode())
	assert.Contains(t, string(msg), "sdmtcp/1 error")
	assert.Contains(t, string(msg), "never runs as root")
	assertEmpty(t, scratch)

	c.withPolicy(t, "default=on")
	r := c.run(t, "", "/tmp", nil, "srun", "bash", "-c", "env | grep -c '^SLURM_DMTCP_'; grep -c libdmtcp /proc/self/maps")
	assert.Equal(t, "0\n0\n", r.stdout, "a root job under default=on saw DMTCP: %s", r.stderr)
	out, _ := exec.Command("ps", "-eo", "user,args").Output()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "slurm-dmtcp-agent") {
			assert.False(t, strings.HasPrefix(l, "root "), "an agent runs as root: %s", l)
		}
	}
}

// Another user cannot list, read or restore the first user's checkpoints, cannot read its
// runtime folder, and cannot signal, cancel or requeue its job or agent. Every folder of the
// job's checkpoints is 0700 and owned by the user.
func TestSecurityOtherUserCannotReadRestoreOrSignal(t *testing.T) {
	c := newCluster(t)
	inst := needDMTCP(t)
	c.withPolicy(t, "min_interval=1")
	id, _, _, runDir := startVictim(t, c, "--dmtcp-interval=2s")
	jobDir := filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id)
	var images []string
	require.Eventually(t, func() bool {
		images, _ = filepath.Glob(jobDir + "/batch/gen-*/ckpt_*.dmtcp")
		return len(images) > 0
	}, 60*time.Second, 200*time.Millisecond, "no generation in %s", jobDir)
	gen := filepath.Dir(images[0])

	uid, _ := idsOf(t, testUser)
	require.NoError(t, filepath.Walk(jobDir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil // a generation pruned while we walk
		}
		assert.Equal(t, uid, ownerOf(t, p), "owner of %s", p)
		if fi.IsDir() {
			assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "mode of %s", p)
		}
		return nil
	}))

	dir := workdirOf(t, otherUser)
	cases := [][]string{
		{"ls", jobDir},
		{"ls", gen},
		{"cat", images[0]},
		{"cat", filepath.Join(jobDir, "batch", "agent.log")},
		{"ls", runDir},
		{"cat", filepath.Join(runDir, "coordinator.log")},
		{inst.Restart, "--new-coordinator", "-p", "0", images[0]},
	}
	for _, args := range cases {
		r := c.run(t, otherUser, dir, nil, append([]string{"timeout", "20"}, args...)...)
		assert.NotEqual(t, 0, r.code, "%s as %s succeeded: %s", strings.Join(args, " "), otherUser, r.stdout)
		assert.NotContains(t, r.stdout, "secret of the first user")
	}

	// A restore path smuggled in through the environment does not give the other user the
	// first user's process: its job cannot read the images.
	r := c.run(t, otherUser, dir, []string{"SLURM_DMTCP_RESTORE=" + gen}, "timeout", "60",
		"srun", "--dmtcp", "bash", "-c", "echo own program")
	assert.NotContains(t, r.stdout+r.stderr, "secret of the first user")

	agent, _ := pidsOf(t, id)
	require.Len(t, agent, 1)
	for _, args := range [][]string{{"kill", "-TERM", agent[0]}, {"scancel", id}, {"scontrol", "requeue", id}} {
		r := c.run(t, otherUser, dir, nil, args...)
		assert.NotEqual(t, 0, r.code, "%v as %s succeeded", args, otherUser)
	}
	assert.Equal(t, "RUNNING", c.job(t, id).State, "the other user's attempts changed the job")
	assert.NoError(t, syscall.Kill(mustAtoi(t, agent[0]), 0), "the agent is gone after the other user's attempts")
}

// Another user must not be able to query or command the job's coordinator (dmtcp_command
// -s, and so -k or -c). DMTCP 5.0's coordinator has no authentication and listens on every
// address: the agent preloads slurm-dmtcp-coordguard.so into it, which closes connections
// from sockets of this node owned by other users.
func TestSecurityOtherUserCannotQueryCoordinator(t *testing.T) {
	c := newCluster(t)
	inst := needDMTCP(t)
	id, _, port, _ := startVictim(t, c)
	for _, host := range []string{"127.0.0.1", hostname(t)} {
		r := c.run(t, otherUser, workdirOf(t, otherUser), nil, "timeout", "20", inst.Command, "-h", host, "-p", port, "--json", "-s")
		assert.NotEqual(t, 0, r.code, "%s reached the coordinator of %s's job %s through %s: %s", otherUser, testUser, id, host, r.stdout)
		assert.NotContains(t, r.stdout, "num_peers")
	}
	// The guard refused the other user and kept serving the job's own user.
	r := c.run(t, testUser, workdirOf(t, otherUser), nil, "timeout", "20", inst.Command, "-h", "127.0.0.1", "-p", port, "--json", "-s")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"num_peers":`)
}

func hostname(t *testing.T) string {
	t.Helper()
	h, err := os.Hostname()
	require.NoError(t, err)
	return h
}

// A step of another user (not even a --dmtcp job) must not join the first user's
// coordinator by naming it in SLURM_DMTCP_COORD_PORT: the plugin joins only the coordinator
// whose port the job's own batch agent wrote on this node.
func TestSecurityOtherUserStepCannotJoinCoordinator(t *testing.T) {
	c := newCluster(t)
	inst := needDMTCP(t)
	_, _, port, _ := startVictim(t, c)
	dir := workdirOf(t, otherUser)

	// A step of the other user with the first user's coordinator in its environment.
	peersNow := func() int {
		s := c.run(t, testUser, dir, nil, inst.Command, "-h", "127.0.0.1", "-p", port, "--json", "-s")
		m := regexp.MustCompile(`"num_peers"\s*:\s*(\d+)`).FindStringSubmatch(s.stdout)
		require.NotNil(t, m, "status of the coordinator: %s %s", s.stdout, s.stderr)
		return mustAtoi(t, m[1])
	}
	before := peersNow()
	joined := make(chan result, 1)
	go func() {
		joined <- c.run(t, otherUser, dir, []string{"SLURM_DMTCP_COORD_HOST=127.0.0.1", "SLURM_DMTCP_COORD_PORT=" + port},
			"timeout", "30", "srun", "bash", "-c", "sleep 4; echo libdmtcp=$(grep -c libdmtcp /proc/self/maps)")
	}()
	most := before
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		most = max(most, peersNow())
	}
	step := <-joined
	assert.Contains(t, step.stdout, "libdmtcp=0", "the other user's step ran under DMTCP: %s %s", step.stdout, step.stderr)
	assert.Equal(t, before, most, "the other user's step joined the first user's coordinator (peers went from %d to %d)", before, most)
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(s))
	require.NoError(t, err)
	return n
}

func ownerOf(t *testing.T, p string) int {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		return -1
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// rootOnlyDir is a folder only root may write: if anything running as root followed a
// planted link into it, files would appear there.
func rootOnlyDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/tmp", "sdmtcp-it-rootonly-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(d, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	assert.Empty(t, names, "something was written through the planted link into %s", dir)
}

// plant makes a symbolic link at link pointing to target, owned by user (as that user would
// have made it).
func plant(t *testing.T, link, target, owner string) {
	t.Helper()
	require.NoError(t, os.Symlink(target, link))
	uid, gid := idsOf(t, owner)
	require.NoError(t, os.Lchown(link, uid, gid))
	t.Cleanup(func() { _ = os.Remove(link) })
}

// A symbolic link planted where a job's checkpoint or runtime folder goes is refused: the job
// fails with a message naming the folder, and nothing is written where the link points.
func TestSecuritySymlinksInCheckpointPathsRefused(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	home := homeOf(t, testUser)
	uid, _ := idsOf(t, testUser)

	run := func(t *testing.T, prepare func(id string) (where string)) {
		dir := workdir(t)
		script := writeScript(t, dir, "job.sh", "#!/bin/bash\necho ran\n")
		id := c.sbatch(t, dir, "--dmtcp", "--hold", "-o", dir+"/out", "-e", dir+"/err", script)
		where := prepare(id)
		c.run(t, "", "/", nil, "scontrol", "release", id)
		j := c.waitDone(t, id, 60*time.Second)
		assert.Equal(t, "FAILED", j.State)
		assert.Equal(t, "125:0", j.ExitCode, "exit code 125: the task could not start under DMTCP")
		out, _ := os.ReadFile(dir + "/out")
		assert.NotContains(t, string(out), "ran", "the job's program ran")
		e, _ := os.ReadFile(dir + "/err")
		assert.Contains(t, string(e), "slurm-dmtcp: cannot run")
		assert.Contains(t, string(e), where, "the message names the refused folder")
		assert.Regexp(t, `symbolic link|belongs to uid`, string(e))
	}

	t.Run("job folder linked to a root folder by the user", func(t *testing.T) {
		target := rootOnlyDir(t)
		run(t, func(id string) string {
			link := filepath.Join(home, ".slurm-dmtcp", id)
			require.NoError(t, os.MkdirAll(filepath.Dir(link), 0o700))
			plant(t, link, target, testUser)
			return link
		})
		assertEmpty(t, target)
	})

	t.Run("step folder linked to a root folder by the user", func(t *testing.T) {
		target := rootOnlyDir(t)
		run(t, func(id string) string {
			jobDir := filepath.Join(home, ".slurm-dmtcp", id)
			require.NoError(t, os.MkdirAll(jobDir, 0o700))
			require.NoError(t, os.Chown(jobDir, uid, uid))
			t.Cleanup(func() { _ = os.RemoveAll(jobDir) })
			link := filepath.Join(jobDir, "batch")
			plant(t, link, target, testUser)
			return link
		})
		assertEmpty(t, target)
	})
}

// valgrind on srun, sbatch and salloc with the plugin loaded (option parsing, policy check, refusal
// of a bad value, submission) reports no error and no leak with a frame in the plugin.
func TestValgrindSrunSbatchWithPlugin(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	vg, err := exec.LookPath("valgrind")
	if err != nil {
		t.Skip("SKIP: valgrind not installed (apt-get install valgrind)")
	}
	dir := workdir(t)
	logs := filepath.Join(dir, "vg")
	require.NoError(t, os.Mkdir(logs, 0o700))
	uid, gid := idsOf(t, testUser)
	require.NoError(t, os.Chown(logs, uid, gid))
	vgArgs := []string{"timeout", "120", vg, "--trace-children=no", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect,possible",
		"--fullpath-after=", "--num-callers=40", "--log-file=" + logs + "/%p.log"}
	type call struct {
		args   []string
		ok     bool
		expect string // a regular expression the output must match
	}
	calls := []call{
		{[]string{"srun", "--dmtcp", "--dmtcp-interval=2m", "bash", "-c", "echo port=$SLURM_DMTCP_COORD_PORT"}, true, `port=\d+`},
		{[]string{"srun", "true"}, true, ""},
		{[]string{"srun", "--dmtcp-interval=bogus", "true"}, false, `dmtcp: --dmtcp-interval=bogus`},
		{[]string{"sbatch", "--dmtcp", "--dmtcp-interval=90s", "-o", "/dev/null", "--wrap", "true"}, true, ""},
		{[]string{"sbatch", "--dmtcp=maybe", "--wrap", "true"}, false, `--dmtcp=maybe`},
		{[]string{"salloc", "--dmtcp-interval=2m", "true"}, true, ``},
	}
	for _, cl := range calls {
		// valgrind writes temporary files in TMPDIR: one the user may write.
		r := c.run(t, testUser, dir, []string{"TMPDIR=" + logs}, append(vgArgs, cl.args...)...)
		if cl.ok {
			assert.Equal(t, 0, r.code, "%v: %s", cl.args, r.stderr)
		} else {
			assert.NotEqual(t, 0, r.code, "%v", cl.args)
		}
		if cl.expect != "" {
			assert.Regexp(t, cl.expect, r.stdout+r.stderr, "%v: the plugin did its part", cl.args)
		}
	}
	files, _ := filepath.Glob(logs + "/*.log")
	require.NotEmpty(t, files, "valgrind wrote no log")
	summaries := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		summaries += strings.Count(string(b), "ERROR SUMMARY:")
		// Records are separated by a line with the "==pid==" prefix alone.
		for _, rec := range regexp.MustCompile(`(?m)^==\d+==\s*$`).Split(string(b), -1) {
			if pluginsRecord(rec) {
				t.Errorf("valgrind reports against the plugin in %s:\n%s", f, rec)
			}
		}
	}
	assert.GreaterOrEqual(t, summaries, len(calls), "every command ran to its end under valgrind")
}

var (
	vgFrame    = regexp.MustCompile(`(?m)^==\d+==\s+(?:at|by) 0x[0-9A-Fa-f]+: (\S+) \((.*)\)$`)
	vgOurs     = regexp.MustCompile(`spank_dmtcp\.so|/spank/[a-z_]+\.[ch]:\d+`)
	vgLeak     = regexp.MustCompile(`are (definitely|indirectly|possibly) lost`)
	vgAllocFns = map[string]bool{"malloc": true, "calloc": true, "realloc": true, "strdup": true, "strndup": true,
		"slurm_xcalloc": true, "slurm_xmalloc": true, "slurm_xrealloc": true, "xstrdup": true, "slurm_xstrdup": true,
		"xstrndup": true, "slurm_xstrndup": true, "xstrdup_printf": true, "slurm_xstrdup_printf": true}
)

// pluginsRecord tells whether a valgrind record is the plugin's doing. An error (invalid
// access, uninitialised value, bad free) is when any frame is in the plugin. A leak is when
// the first frame above the allocators is the plugin's: a block that Slurm's own code
// allocated and keeps until exit (spank_option_register copies each option into Slurm's
// list) is Slurm's, even when the plugin's call led there.
func pluginsRecord(rec string) bool {
	if !vgOurs.MatchString(rec) {
		return false
	}
	if !vgLeak.MatchString(rec) {
		return true
	}
	for _, m := range vgFrame.FindAllStringSubmatch(rec, -1) {
		if strings.Contains(m[2], "vgpreload") || vgAllocFns[m[1]] {
			continue
		}
		return vgOurs.MatchString(m[0])
	}
	return false
}

// The classifier above, on records of the kinds valgrind printed for srun.
func TestValgrindRecordClassifier(t *testing.T) {
	slurmKeeps := `==1028== 50 bytes in 2 blocks are possibly lost in loss record 118 of 211
==1028==    at 0x48465EF: calloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==1028==    by 0x4A000EC: slurm_xcalloc (in /usr/lib/x86_64-linux-gnu/slurm-wlm/libslurmfull.so)
==1028==    by 0x4954BF6: ??? (in /usr/lib/x86_64-linux-gnu/slurm-wlm/libslurmfull.so)
==1028==    by 0x51CFF14: sdmtcp_options_register (/src/spank/options.c:94)
==1028==    by 0x51CF439: slurm_spank_init (/src/spank/spank_dmtcp.c:38)`
	ourLeak := `==7== 24 bytes in 1 blocks are definitely lost in loss record 3 of 9
==7==    at 0x48465EF: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==7==    by 0x51CF000: sdmtcp_config_parse (/src/spank/config.c:150)
==7==    by 0x4954BF6: ??? (in /usr/lib/x86_64-linux-gnu/slurm-wlm/libslurmfull.so)`
	ourRead := `==7== Invalid read of size 1
==7==    at 0x4849A2E: strlen (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==7==    by 0x4A0000F: ??? (in /usr/lib/x86_64-linux-gnu/slurm-wlm/libslurmfull.so)
==7==    by 0x51CF111: sdmtcp_parse_ready (/src/spank/stepd.c:88)`
	slurmOnly := `==7== 21 bytes in 1 blocks are definitely lost in loss record 59 of 259
==7==    at 0x48465EF: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==7==    by 0x11906E: init_srun (in /usr/bin/srun)`
	assert.False(t, pluginsRecord(slurmKeeps), "Slurm's own option list")
	assert.True(t, pluginsRecord(ourLeak), "a block the plugin allocated and lost")
	assert.True(t, pluginsRecord(ourRead), "an invalid read under the plugin")
	assert.False(t, pluginsRecord(slurmOnly), "srun's own leak")
}

// plantScript reports its runtime folder and socket, asks its own agent for its status from
// inside the job, runs a step (which joins the batch job's coordinator when slurmstepd finds
// the batch agent's port file), then runs until dir/stop appears.
const plantScript = `#!/bin/bash
echo "rundir=$SLURM_DMTCP_RUNDIR"
echo "socket=$SLURM_DMTCP_CONTROL_SOCKET"
%s status >inside-status.txt 2>&1; echo "inside rc=$?"
srun -n1 bash -c 'grep -q libdmtcp /proc/self/maps && echo "step under DMTCP"' >step.txt 2>&1
while [ ! -e %s/stop ]; do sleep 0.3; done
echo end
`

// Another user plants the per-user runtime folder (runtime_dir/slurm-dmtcp-<uid>) before the
// job: a folder of its own, open to all, or a symbolic link to one. The job runs anyway in a
// runtime folder of its user's own (0700, socket 0600), takes a checkpoint, dmtcpctl reaches
// its agent from inside the job and from a login shell, and nothing is written into, or
// through, what was planted. runtime_dir is a private sticky folder like /tmp here, so that
// the jobs of other clusters on this host, which use /tmp, are not disturbed.
func TestSecurityPlantedRuntimeFolderIgnored(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	uid, _ := idsOf(t, testUser)
	otherUID, otherGID := idsOf(t, otherUser)

	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, at string) (trap string)
	}{
		{"folder of another user", func(t *testing.T, at string) string {
			require.NoError(t, os.Mkdir(at, 0o777))
			require.NoError(t, os.Chown(at, otherUID, otherGID))
			require.NoError(t, os.Chmod(at, 0o777))
			return at
		}},
		{"symbolic link of another user", func(t *testing.T, at string) string {
			trap := workdirOf(t, otherUser)
			require.NoError(t, os.Chmod(trap, 0o777))
			plant(t, at, trap, otherUser)
			return trap
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, err := os.MkdirTemp("/tmp", "sdmtcp-it-rt-")
			require.NoError(t, err)
			require.NoError(t, os.Chmod(rt, os.ModeSticky|0o777))
			t.Cleanup(func() { _ = os.RemoveAll(rt) })
			planted := filepath.Join(rt, "slurm-dmtcp-"+strconv.Itoa(uid))
			trap := tc.plant(t, planted)
			c.withPolicy(t, "runtime_dir="+rt)

			dir := workdir(t)
			script := writeScript(t, dir, "job.sh", fmt.Sprintf(plantScript, c.dmtcpctl(), dir))
			id := c.sbatch(t, dir, "--dmtcp", "-o", dir+"/out", "-e", dir+"/err", script)
			out := waitFile(t, dir+"/out", "inside rc=", 60*time.Second)
			assert.Contains(t, out, "inside rc=0", "dmtcpctl status inside the job")
			in, _ := os.ReadFile(dir + "/inside-status.txt")
			assert.Contains(t, string(in), "running", "dmtcpctl status inside the job: %s", in)

			step := waitFile(t, dir+"/step.txt", "\n", 30*time.Second)
			assert.Equal(t, "step under DMTCP\n", step, "the job's step joined its coordinator")

			rd := regexp.MustCompile(`rundir=(\S+)`).FindStringSubmatch(out)
			require.NotNil(t, rd, out)
			runDir := rd[1]
			assert.NotEqual(t, planted, filepath.Dir(runDir), "the planted folder was used")
			assert.Equal(t, rt, filepath.Dir(filepath.Dir(runDir)), "the runtime folder is under runtime_dir")
			for _, p := range []string{filepath.Dir(runDir), runDir} {
				fi, err := os.Lstat(p)
				require.NoError(t, err)
				assert.True(t, fi.IsDir(), "%s is a real folder", p)
				assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "mode of %s", p)
				assert.Equal(t, uid, ownerOf(t, p), "owner of %s", p)
			}
			sock, err := os.Lstat(filepath.Join(runDir, "control.sock"))
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), sock.Mode().Perm(), "mode of the control socket")

			r := c.ctlJob(t, testUser, id, "checkpoint", "--timeout", "2m")
			assert.Equal(t, 0, r.code, "dmtcpctl --job checkpoint: %s %s", r.stdout, r.stderr)
			r = c.ctlJob(t, testUser, id, "status")
			assert.Equal(t, 0, r.code, "dmtcpctl --job status: %s %s", r.stdout, r.stderr)
			assert.Contains(t, r.stdout, "generation 1", "status names the checkpoint just taken")

			require.NoError(t, os.WriteFile(filepath.Join(dir, "stop"), nil, 0o644))
			j := c.waitDone(t, id, 60*time.Second)
			assert.Equal(t, "COMPLETED", j.State)
			assert.Equal(t, "0:0", j.ExitCode)
			e, _ := os.ReadFile(dir + "/err")
			assert.NotContains(t, string(e), "cannot run", "the job ran under DMTCP")
			gens, _ := filepath.Glob(filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "batch", "gen-*"))
			assert.NotEmpty(t, gens, "a checkpoint generation was committed")
			agentLog, _ := os.ReadFile(filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "batch", "agent.log"))
			assert.Regexp(t, regexp.QuoteMeta("runtime folder "+planted+" ")+`(belongs to|is a symbolic link of) uid `+strconv.Itoa(otherUID)+`.*passed over, not used`,
				string(agentLog), "the agent logs what it passed over")
			assertEmpty(t, trap)
			_, err = os.Stat(runDir)
			assert.True(t, os.IsNotExist(err), "the runtime folder %s is removed at the end", runDir)
			assert.Equal(t, otherUID, ownerOf(t, planted), "what was planted is left alone")
		})
	}
}

// checkpoint_dir under a shared sticky folder (/var/tmp/<scratch>/%u/%j): the agent walks the
// whole path from / and refuses a component another user owns (a folder or a symbolic link
// planted in the user's place) or a shared folder without the sticky bit, with a message
// naming the key, the component and its owner; nothing is written there. Nothing planted: the
// job makes its folders itself (0700) and checkpoints there.
func TestSecurityCheckpointDirParentsChecked(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	uid, _ := idsOf(t, testUser)
	otherUID, otherGID := idsOf(t, otherUser)

	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, scratch, mine string) (trap string)
		refused string // the component named, relative to scratch; "" the job runs
		why     string
	}{
		{name: "nothing planted"},
		{name: "the user's folder made by another user", prepare: func(t *testing.T, scratch, mine string) string {
			require.NoError(t, os.Mkdir(mine, 0o777))
			require.NoError(t, os.Chown(mine, otherUID, otherGID))
			require.NoError(t, os.Chmod(mine, 0o777))
			return mine
		}, refused: testUser, why: "belongs to uid " + strconv.Itoa(otherUID) + " (" + otherUser + "), not to root or the job's user"},
		{name: "the user's folder a link of another user", prepare: func(t *testing.T, scratch, mine string) string {
			trap := workdirOf(t, otherUser)
			require.NoError(t, os.Chmod(trap, 0o777))
			plant(t, mine, trap, otherUser)
			return trap
		}, refused: testUser, why: "is a symbolic link of uid " + strconv.Itoa(otherUID)},
		{name: "the shared folder not sticky", prepare: func(t *testing.T, scratch, mine string) string {
			require.NoError(t, os.Chmod(scratch, 0o777))
			return ""
		}, refused: ".", why: "is writable by others (mode 0777) and not sticky"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scratch, err := os.MkdirTemp("/var/tmp", "sdmtcp-scratch-")
			require.NoError(t, err)
			require.NoError(t, os.Chmod(scratch, os.ModeSticky|0o777))
			t.Cleanup(func() { _ = os.RemoveAll(scratch) })
			mine := filepath.Join(scratch, testUser)
			trap := ""
			if tc.prepare != nil {
				trap = tc.prepare(t, scratch, mine)
			}
			c.withPolicy(t, "checkpoint_dir="+scratch+"/%u/%j")

			dir := workdir(t)
			script := writeScript(t, dir, "job.sh", fmt.Sprintf("#!/bin/bash\necho ran\n%s checkpoint --timeout 2m; echo \"checkpoint rc=$?\"\n", c.dmtcpctl()))
			id := c.sbatch(t, dir, "--dmtcp", "-o", dir+"/out", "-e", dir+"/err", script)
			j := c.waitDone(t, id, 90*time.Second)
			out, _ := os.ReadFile(dir + "/out")
			e, _ := os.ReadFile(dir + "/err")
			if tc.refused == "" {
				assert.Equal(t, "COMPLETED", j.State, "err: %s", e)
				assert.Contains(t, string(out), "checkpoint rc=0")
				for _, p := range []string{mine, filepath.Join(mine, id), filepath.Join(mine, id, "batch")} {
					fi, err := os.Lstat(p)
					require.NoError(t, err)
					assert.True(t, fi.IsDir(), p)
					assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "mode of %s", p)
					assert.Equal(t, uid, ownerOf(t, p), "owner of %s", p)
				}
				gens, _ := filepath.Glob(filepath.Join(mine, id, "batch", "gen-*"))
				assert.NotEmpty(t, gens, "the checkpoint is in checkpoint_dir")
				return
			}
			assert.Equal(t, "FAILED", j.State)
			assert.Equal(t, "125:0", j.ExitCode, "exit code 125: the task could not start under DMTCP")
			assert.NotContains(t, string(out), "ran", "the job's program ran")
			msg := "checkpoint_dir " + filepath.Join(mine, id) + ": " + filepath.Join(scratch, tc.refused) + " " + tc.why
			assert.Contains(t, string(e), msg, "the message names the key, the component and its owner")
			if trap != "" {
				assertEmpty(t, trap)
			}
		})
	}
}
