package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServeUnderSystemdProtocol builds the command and runs `serve` the
// way systemd does: NOTIFY_SOCKET and WATCHDOG_USEC set, SIGHUP to reload,
// SIGTERM to stop. It reads the notify datagrams from a real socket.
func TestServeUnderSystemdProtocol(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "slurm-dmtcp-nodeprobe")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	sockPath := filepath.Join(dir, "notify.sock")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	require.NoError(t, err)
	defer sock.Close()
	states := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				close(states)
				return
			}
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				states <- line
			}
		}
	}()
	waitFor := func(want string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case s := <-states:
				if s == want {
					return
				}
			case <-deadline:
				t.Fatalf("no %q from serve", want)
			}
		}
	}

	db := filepath.Join(dir, "state", "nodefacts.db")
	root := "../../facts/testdata/roots/intel-skylake-rhel9"
	cmd := exec.Command(bin, "serve", "--every", "1h", "--db", db, "--root", root, "--dmtcp-prefix", "../../facts/testdata/dmtcp-3.0.0")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sockPath, "WATCHDOG_USEC=200000")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill() //nolint:errcheck // already exited in the normal case

	waitFor("READY=1")
	waitFor("WATCHDOG=1")
	waitFor("WATCHDOG=1")
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	waitFor("RELOADING=1")
	waitFor("READY=1")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	waitFor("STOPPING=1")
	require.NoError(t, cmd.Wait(), stderr.String())

	show := exec.Command(bin, "show", "--db", db)
	out, err = show.CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "(2 probes)")
	st, err := os.Stat(db)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())
}
