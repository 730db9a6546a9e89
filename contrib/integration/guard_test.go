//go:build integration

package integration

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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
