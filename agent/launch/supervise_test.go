package launch

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto/procstat"
)

// superviseHelperEnv makes the test binary act as a task launcher (see TestMain).
const superviseHelperEnv = "SDMTCP_TEST_SUPERVISE_PIDFILE"

func TestMain(m *testing.M) {
	if argv := os.Getenv(joinHelperEnv); argv != "" {
		args := strings.Split(argv, "\x1f")
		code, _ := Supervise(args[0], args, os.Environ(), os.Getenv(joinHelperRunDir), true, time.Second)
		os.Exit(code)
	}
	if pidfile := os.Getenv(superviseHelperEnv); pidfile != "" {
		code, _ := Supervise("/bin/sh", []string{"sh", "-c", `echo $$ > "$0.tmp" && mv "$0.tmp" "$0" && exec sleep 60`, pidfile},
			[]string{"PATH=/usr/bin:/bin"}, "", false, time.Second)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// The task's program ends with the launcher: a launcher killed by Slurm's SIGKILL does not
// leave its child running outside the job.
func TestSuperviseChildDiesWithLauncher(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "child.pid")
	launcher := exec.Command(os.Args[0], "-test.run=^$")
	launcher.Env = append(os.Environ(), superviseHelperEnv+"="+pidfile)
	require.NoError(t, launcher.Start())
	var child int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(pidfile)
		if err != nil {
			return false
		}
		child, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "the launcher's child never started")
	require.True(t, running(child), "child %d runs under the launcher", child)

	require.NoError(t, launcher.Process.Signal(syscall.SIGKILL))
	_ = launcher.Wait()
	assert.Eventually(t, func() bool { return !running(child) }, 5*time.Second, 10*time.Millisecond,
		"child %d outlived its launcher", child)
}

// running says whether pid is a live process (not gone, not a zombie).
func running(pid int) bool {
	st, err := procstat.Read("/proc", pid)
	return err == nil && !st.Gone()
}

// A program that ends while the agent stops the computation is taken for stopped (the
// agent's own -kc exit is 0 too), unless that checkpoint found no process: then the program
// had ended by itself, or none was taken and the program left running: then the program
// ended by itself, with its own status.
func TestSuperviseOutcomeOfAStop(t *testing.T) {
	for _, tc := range []struct {
		name        string
		markers     []string
		wantCode    int
		wantStopped bool
	}{
		{"no stop", nil, 3, false},
		{"stopped by the agent", []string{proto.StoppingFile, proto.StoppedFile}, ExitStopped, true},
		{"the stop found nothing", []string{proto.StoppingFile, proto.StopFoundNothingFile, proto.StoppedFile}, 3, false},
		{"the stop was skipped", []string{proto.StoppingFile, proto.StopSkippedFile, proto.StoppedFile}, 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := t.TempDir()
			for _, m := range tc.markers {
				require.NoError(t, os.WriteFile(filepath.Join(run, m), nil, 0o600))
			}
			code, stopped := Supervise("/bin/sh", []string{"sh", "-c", "exit 3"}, []string{"PATH=/usr/bin:/bin"}, run, false, time.Second)
			assert.Equal(t, tc.wantCode, code)
			assert.Equal(t, tc.wantStopped, stopped)
		})
	}
}
