//go:build integration

package integration

import (
	"fmt"
	"io"
	"net"
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

// Tests of slurm-dmtcp-coordguard.so, the library the agent preloads into the job's
// dmtcp_coordinator (spank/coordguard.c).

// hitAndRun connects as the user running it to 127.0.0.1:PORT, writes the bytes of FILE and
// closes at once: with RST=1 through SO_LINGER 0 (the kernel forgets the socket), else with
// a FIN (the kernel keeps it a while as an orphan, then in TIME_WAIT, owned by nobody).
const hitAndRun = `use strict; use Socket;
my ($port, $file, $rst) = @ARGV;
open(my $fh, "<", $file) or die "open $file: $!"; binmode $fh; local $/; my $msg = <$fh>;
socket(my $s, PF_INET, SOCK_STREAM, getprotobyname("tcp")) or die "socket: $!";
connect($s, sockaddr_in($port, inet_aton("127.0.0.1"))) or die "connect: $!";
syswrite($s, $msg) == length($msg) or die "write: $!";
setsockopt($s, SOL_SOCKET, SO_LINGER, pack("ii", 1, 0)) or die "linger: $!" if $rst;
close($s);
print "sent ", length($msg), " bytes\n";
`

// dmtcpCommandBytes is what dmtcp_command sends to a coordinator for args (a real
// dmtcp_command, talking to a listener of the test's that only records).
func dmtcpCommandBytes(t *testing.T, command string, args ...string) []byte {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	cmd := exec.Command(command, append([]string{"-h", "127.0.0.1", "-p", port}, args...)...)
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	require.NoError(t, ln.(*net.TCPListener).SetDeadline(time.Now().Add(10*time.Second)))
	conn, err := ln.Accept()
	require.NoError(t, err, "dmtcp_command did not connect")
	defer conn.Close()
	var msg []byte
	buf := make([]byte, 4096)
	for {
		// Everything of the request comes at once; then it waits for a reply.
		_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := conn.Read(buf)
		msg = append(msg, buf[:n]...)
		if err != nil {
			break
		}
	}
	require.NotEmpty(t, msg, "dmtcp_command sent nothing")
	return msg
}

var intervalRE = regexp.MustCompile(`"checkpoint_interval"\s*:\s*(\d+)`)

// A client of another user that connects to the job's coordinator, writes a request and
// closes at once, before the coordinator accepts (here: the coordinator is stopped
// meanwhile; in the field, a coordinator that is busy, or not yet running while the
// agent's socket already queues connections), leaves a socket that the kernel reports with
// no owner (uid 0, no inode), or none at all. The guard must refuse such a connection: its
// owner is not proven. The request here, `dmtcp_command -i 4321`, would set the job's
// checkpoint interval; a `-q` would end the job the same way.
func TestSecurityGuardRefusesClosedClient(t *testing.T) {
	c := newCluster(t)
	inst := needDMTCP(t)
	msg := dmtcpCommandBytes(t, inst.Command, "-i", "4321")
	for _, tc := range []struct {
		name string
		rst  string
	}{
		{"closed with FIN: orphan then TIME_WAIT", "0"},
		{"closed with RST: no socket left", "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, _, port, runDir := startVictim(t, c)
			_, coord := pidsOf(t, id)
			require.Len(t, coord, 1, "the job's coordinator: %v", leftovers(t, id))
			pid := mustAtoi(t, coord[0])
			interval := func() string {
				r := c.run(t, testUser, "/", nil, "timeout", "20", inst.Command, "-h", "127.0.0.1", "-p", port, "--json", "-s")
				require.Equal(t, 0, r.code, "the job's coordinator must still answer its user: %s %s", r.stdout, r.stderr)
				m := intervalRE.FindStringSubmatch(r.stdout)
				require.NotNil(t, m, r.stdout)
				return m[1]
			}
			before := interval()
			require.NotEqual(t, "4321", before)

			dir := workdirOf(t, otherUser)
			f := filepath.Join(dir, "request")
			require.NoError(t, os.WriteFile(f, msg, 0o644))
			require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
			stopped := true
			defer func() {
				if stopped {
					_ = syscall.Kill(pid, syscall.SIGCONT)
				}
			}()
			r := c.run(t, otherUser, dir, nil, "perl", "-e", hitAndRun, port, f, tc.rst)
			require.Equal(t, 0, r.code, "the other user's client: %s %s", r.stdout, r.stderr)
			time.Sleep(300 * time.Millisecond) // the client's socket is an orphan or gone now
			require.NoError(t, syscall.Kill(pid, syscall.SIGCONT))
			stopped = false
			time.Sleep(time.Second)

			assert.Equal(t, before, interval(), "%s's request, sent from a closed socket, was obeyed by the coordinator of %s's job %s", otherUser, testUser, id)
			out := readAll(t, filepath.Join(runDir, "coordinator.out"))
			assert.Regexp(t, `slurm-dmtcp-coordguard: refused a connection( from 127\.0\.0\.1:\d+)?: the client`, out, "the refusal is logged")
		})
	}
}

// readAll reads a file or fails the test.
func readAll(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	return string(b)
}

// The guard must really be active in the job's coordinator, or the step does not run: an
// installation where it is missing beside the agent, is not a library, or is a library that
// is not the guard (loaded, but doing nothing) fails the step with a message naming the
// guard's file and why, and the task's program never runs. (The agent ends with exit code
// 8 and the same message in agent.log.)
func TestSecurityGuardMissingOrInactiveRefusesStep(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	agent := filepath.Join(c.dir, "bin", "slurm-dmtcp-agent")
	b, err := os.ReadFile(agent)
	require.NoError(t, err, "the cluster's agent (cluster-up copies it there)")
	for _, tc := range []struct {
		name  string
		guard func(t *testing.T, p string) // makes the guard's file at p
		want  string
	}{
		{"missing", func(*testing.T, string) {}, "not installed beside the agent"},
		{"not a library", func(t *testing.T, p string) {
			require.NoError(t, os.WriteFile(p, []byte("not a library\n"), 0o755))
		}, "not active in dmtcp_coordinator: the dynamic loader did not load it"},
		{"a library that is not the guard", func(t *testing.T, p string) {
			lib, err := os.ReadFile("/lib/x86_64-linux-gnu/libm.so.6")
			if err != nil {
				t.Skipf("SKIP: no libm.so.6 to stand for another library: %v", err)
			}
			require.NoError(t, os.WriteFile(p, lib, 0o755))
		}, "not active in dmtcp_coordinator: it did not hand the coordinator the job's socket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst := workdir(t)
			require.NoError(t, os.Chmod(inst, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(inst, "slurm-dmtcp-agent"), b, 0o755))
			guard := filepath.Join(inst, "slurm-dmtcp-coordguard.so")
			tc.guard(t, guard)
			c.withPolicy(t, "agent="+filepath.Join(inst, "slurm-dmtcp-agent"))
			dir := workdir(t)
			start := time.Now()
			r := c.run(t, testUser, dir, nil, "timeout", "60", "srun", "--dmtcp", "--job-name=noguard", "bash", "-c", "echo the program ran")
			assert.Equal(t, 125, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			assert.Contains(t, r.stderr, "slurm-dmtcp: cannot run bash under DMTCP: ")
			assert.Contains(t, r.stderr, "coordinator guard "+guard+": "+tc.want)
			assert.Contains(t, r.stderr, "the step is not run with an unguarded coordinator")
			assert.NotContains(t, r.stdout, "the program ran")
			assert.Less(t, time.Since(start), 20*time.Second, "a fast failure")
		})
	}
}

// clusterNode is one line of the multi-node cluster's run/nodes: name, namespace, address.
type clusterNode struct{ name, netns, addr string }

func (c *cluster) nodeTable(t *testing.T) []clusterNode {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, "run", "nodes"))
	require.NoError(t, err, "the multi-node cluster's node list")
	var nodes []clusterNode
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 4 && f[1] != "-" {
			nodes = append(nodes, clusterNode{f[0], f[1], f[3]})
		}
	}
	return nodes
}

// onNode runs a command as usr in the network namespace of a node of the multi-node cluster.
func (c *cluster) onNode(t *testing.T, n clusterNode, usr string, args ...string) result {
	t.Helper()
	return c.run(t, "", "/", nil, append([]string{"nsenter", "--net=/run/netns/" + n.netns, "runuser", "-u", usr, "--"}, args...)...)
}

var stepTaskRE = regexp.MustCompile(`task (\d+) on (\S+) coord=(\S+):(\d+) rundir=(\S+)`)

// The coordinator of a step across nodes lets in, from other hosts, only the step's own
// nodes: a host of the cluster that is not a node of the step is refused, even for the
// job's own user, and logged; on the coordinator's own node another user is refused by the
// uid check; the tasks and the job's user on the step's other node are let in, and the step
// ends well. (Another user on the step's other node is let in too: a remote client's user
// cannot be known; see docs/admin.md.)
func TestSecurityStepAcrossNodesCoordinatorOnlyForItsNodes(t *testing.T) {
	c := newCluster(t)
	inst := needDMTCP(t)
	nodes := c.nodeTable(t)
	if len(nodes) < 3 {
		t.Skipf("SKIP: needs a cluster of 3 or more nodes in network namespaces (this one has %d): make cluster-up NODES=3", len(nodes))
	}
	dir := workdir(t)
	script := writeScript(t, dir, "job.sh", fmt.Sprintf(`#!/bin/bash
#SBATCH -N2
srun -N2 -n2 --dmtcp bash -c 'echo "task $SLURM_PROCID on $(hostname) coord=$SLURM_DMTCP_COORD_HOST:$SLURM_DMTCP_COORD_PORT rundir=$SLURM_DMTCP_RUNDIR"; while [ ! -e %s/go ]; do sleep 0.2; done'
echo "step exit $?"
`, dir))
	id := c.sbatch(t, dir, "-o", dir+"/out", script)
	t.Cleanup(func() { _ = os.WriteFile(dir+"/go", nil, 0o644) })
	deadline := time.Now().Add(60 * time.Second)
	var tasks [][]string
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(dir + "/out")
		if tasks = stepTaskRE.FindAllStringSubmatch(string(b), -1); len(tasks) == 2 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	b, _ := os.ReadFile(dir + "/out")
	require.Len(t, tasks, 2, "both tasks of the step started: %s", b)
	coordHost, port := tasks[0][3], tasks[0][4]
	inStep := map[string]bool{tasks[0][2]: true, tasks[1][2]: true}
	var leader, member, outsider clusterNode
	for _, n := range nodes {
		switch {
		case n.addr == coordHost || n.name == coordHost:
			leader = n
		case inStep[n.name]:
			member = n
		case outsider.name == "":
			outsider = n
		}
	}
	require.NotEmpty(t, leader.name, "the coordinator's node (%s) among %v", coordHost, nodes)
	require.NotEmpty(t, member.name, "the step's other node among %v", nodes)
	require.NotEmpty(t, outsider.name, "a node outside the step among %v", nodes)
	rundir := ""
	for _, tk := range tasks {
		if tk[2] == leader.name {
			rundir = tk[5]
		}
	}
	status := func(n clusterNode, usr string) result {
		return c.onNode(t, n, usr, "timeout", "20", inst.Command, "-h", coordHost, "-p", port, "--json", "-s")
	}
	for _, tc := range []struct {
		name  string
		node  clusterNode
		usr   string
		admit bool
	}{
		{"the job's user on a node outside the step", outsider, testUser, false},
		{"another user on a node outside the step", outsider, otherUser, false},
		{"another user on the coordinator's node", leader, otherUser, false},
		{"the job's user on the coordinator's node", leader, testUser, true},
		{"the job's user on the step's other node", member, testUser, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := status(tc.node, tc.usr)
			if tc.admit {
				assert.Equal(t, 0, r.code, "%s on %s: %s %s", tc.usr, tc.node.name, r.stdout, r.stderr)
				// Both tasks are connected (with a sleep of theirs, now and then).
				assert.Regexp(t, `"num_peers":([2-9]|\d\d+)`, r.stdout)
				return
			}
			assert.NotEqual(t, 0, r.code, "%s on %s reached the coordinator of %s's step: %s", tc.usr, tc.node.name, testUser, r.stdout)
			assert.NotContains(t, r.stdout, "num_peers")
		})
	}
	out := readAll(t, filepath.Join(rundir, "coordinator.out"))
	assert.Contains(t, out, "refused a connection from "+outsider.addr+":", "the outsider's attempts are logged")
	assert.Contains(t, out, "a connection from a host that is not a node of the step")
	assert.Regexp(t, `refused a connection from \S+: the client's socket belongs to another user \(uid `+strconv.Itoa(uidOf(t, otherUser)), out)

	require.NoError(t, os.WriteFile(dir+"/go", nil, 0o644))
	j := c.waitDone(t, id, 60*time.Second)
	b, _ = os.ReadFile(dir + "/out")
	assert.Equal(t, "COMPLETED", j.State, "output:\n%s", b)
	assert.Contains(t, string(b), "step exit 0\n")
}
