package launch

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakePrefix makes an install prefix with the four DMTCP programs.
func fakePrefix(t *testing.T) string {
	p := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(p, "bin"), 0o755))
	for _, n := range []string{"dmtcp_coordinator", "dmtcp_launch", "dmtcp_command", "dmtcp_restart"} {
		require.NoError(t, os.WriteFile(filepath.Join(p, "bin", n), []byte("#!/bin/sh\n"), 0o755))
	}
	return p
}

func TestCommand(t *testing.T) {
	prefix := fakePrefix(t)
	gen := t.TempDir()
	for _, f := range []string{"ckpt_bash_1.dmtcp", "ckpt_sleep_2.dmtcp", "MANIFEST.json"} {
		require.NoError(t, os.WriteFile(filepath.Join(gen, f), nil, 0o600))
	}
	base := []string{"SLURM_DMTCP_ARGV0=./job.sh", "SLURM_DMTCP_COORD_HOST=n1", "SLURM_DMTCP_COORD_PORT=4242",
		"SLURM_DMTCP_DMTCP_PREFIX=" + prefix, "SLURM_DMTCP_CKPTDIR=/c/.current", "SLURM_DMTCP_TMPDIR=/r/tmp", "HOME=/h"}
	for _, tc := range []struct {
		name     string
		env      []string
		wantProg string
		wantArgv []string
		wantErr  string
	}{
		{name: "launch", env: base, wantProg: prefix + "/bin/dmtcp_launch",
			wantArgv: []string{prefix + "/bin/dmtcp_launch", "-j", "-h", "n1", "-p", "4242", "--ckptdir", "/c/.current", "--tmpdir", "/r/tmp", "./job.sh", "a", "b c"}},
		{name: "launch without compression", env: append(base, "SLURM_DMTCP_COMPRESS=off"), wantProg: prefix + "/bin/dmtcp_launch",
			wantArgv: []string{prefix + "/bin/dmtcp_launch", "-j", "-h", "n1", "-p", "4242", "--ckptdir", "/c/.current", "--tmpdir", "/r/tmp", "--no-gzip", "./job.sh", "a", "b c"}},
		{name: "launch with compression", env: append(base, "SLURM_DMTCP_COMPRESS=on"), wantProg: prefix + "/bin/dmtcp_launch",
			wantArgv: []string{prefix + "/bin/dmtcp_launch", "-j", "-h", "n1", "-p", "4242", "--ckptdir", "/c/.current", "--tmpdir", "/r/tmp", "--gzip", "./job.sh", "a", "b c"}},
		{name: "restore keeps the launch's setting", env: append(base, "SLURM_DMTCP_COMPRESS=off", "SLURM_DMTCP_RESTORE="+gen), wantProg: prefix + "/bin/dmtcp_restart",
			wantArgv: []string{prefix + "/bin/dmtcp_restart", "-j", "-h", "n1", "-p", "4242", "--ckptdir", "/c/.current", "--tmpdir", "/r/tmp",
				filepath.Join(gen, "ckpt_bash_1.dmtcp"), filepath.Join(gen, "ckpt_sleep_2.dmtcp")}},
		{name: "restore", env: append(base, "SLURM_DMTCP_RESTORE="+gen, "SLURM_DMTCP_RESTORE_NOTE=restart 1"), wantProg: prefix + "/bin/dmtcp_restart",
			wantArgv: []string{prefix + "/bin/dmtcp_restart", "-j", "-h", "n1", "-p", "4242", "--ckptdir", "/c/.current", "--tmpdir", "/r/tmp",
				filepath.Join(gen, "ckpt_bash_1.dmtcp"), filepath.Join(gen, "ckpt_sleep_2.dmtcp")}},
		{name: "restore without images", env: append(base, "SLURM_DMTCP_RESTORE="+t.TempDir()), wantErr: "no checkpoint image"},
		{name: "error from the plugin", env: append(base, "SLURM_DMTCP_ERROR=DMTCP not found in /x"), wantErr: "cannot run ./job.sh under DMTCP: DMTCP not found in /x"},
		{name: "not started by the plugin", env: []string{"HOME=/h"}, wantErr: "SLURM_DMTCP_ARGV0 is not set"},
		{name: "no coordinator", env: []string{"SLURM_DMTCP_ARGV0=x"}, wantErr: "coordinator's address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog, argv, env, err := Command([]string{"a", "b c"}, tc.env, "")
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantProg, prog)
			assert.Equal(t, tc.wantArgv, argv)
			assert.Contains(t, env, "HOME=/h")
			for _, kv := range env {
				assert.NotRegexp(t, `^SLURM_DMTCP_(ARGV0|ERROR|RESTORE|RESTORE_NOTE)=`, kv, "meant for this task only")
			}
		})
	}
}

func TestNotes(t *testing.T) {
	assert.Equal(t, []string{"generation 3 is damaged", "restart 2: restoring generation 2"},
		Notes([]string{"SLURM_DMTCP_RESTORE_NOTE=generation 3 is damaged | restart 2: restoring generation 2"}))
	assert.Nil(t, Notes([]string{"HOME=/h"}))
}

func TestCommandPerRank(t *testing.T) {
	prefix := fakePrefix(t)
	ckpt := t.TempDir()
	gen := t.TempDir()
	for _, f := range []string{"rank-0/ckpt_a_1.dmtcp", "rank-2/ckpt_a_3.dmtcp", "rank-2/ckpt_sh_4.dmtcp", "ckpt_top_9.dmtcp"} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(gen, f)), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(gen, f), nil, 0o600))
	}
	base := []string{"SLURM_DMTCP_ARGV0=./prog", "SLURM_DMTCP_COORD_HOST=10.79.0.11", "SLURM_DMTCP_COORD_PORT=4242",
		"SLURM_DMTCP_DMTCP_PREFIX=" + prefix, "SLURM_DMTCP_CKPTDIR=" + ckpt, "SLURM_DMTCP_PER_RANK=1"}
	launch, restart := prefix+"/bin/dmtcp_launch", prefix+"/bin/dmtcp_restart"
	for _, tc := range []struct {
		name     string
		env      []string
		wantArgv []string
		wantErr  string
	}{
		{name: "launch into the rank's folder", env: append(base, "SLURM_PROCID=2"),
			wantArgv: []string{launch, "-j", "-h", "10.79.0.11", "-p", "4242", "--ckptdir", filepath.Join(ckpt, "rank-2"), "./prog", "x"}},
		{name: "restore the rank's own images", env: append(base, "SLURM_PROCID=2", "SLURM_DMTCP_RESTORE="+gen),
			wantArgv: []string{restart, "-j", "-h", "10.79.0.11", "-p", "4242", "--ckptdir", filepath.Join(ckpt, "rank-2"),
				filepath.Join(gen, "rank-2", "ckpt_a_3.dmtcp"), filepath.Join(gen, "rank-2", "ckpt_sh_4.dmtcp")}},
		{name: "rank 0", env: append(base, "SLURM_PROCID=0", "SLURM_DMTCP_RESTORE="+gen),
			wantArgv: []string{restart, "-j", "-h", "10.79.0.11", "-p", "4242", "--ckptdir", filepath.Join(ckpt, "rank-0"),
				filepath.Join(gen, "rank-0", "ckpt_a_1.dmtcp")}},
		{name: "a rank without images", env: append(base, "SLURM_PROCID=1", "SLURM_DMTCP_RESTORE="+gen),
			wantErr: "no checkpoint image in " + filepath.Join(gen, "rank-1")},
		{name: "no rank", env: base, wantErr: `SLURM_PROCID is ""`},
		{name: "bad rank", env: append(base, "SLURM_PROCID=-1"), wantErr: `SLURM_PROCID is "-1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, argv, env, err := Command([]string{"x"}, tc.env, "")
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantArgv, argv)
			assert.DirExists(t, argv[7], "the rank's checkpoint folder is made")
			assert.NotContains(t, env, "SLURM_DMTCP_PER_RANK=1")
		})
	}
}

// When dmtcp_launch failed, the launcher tells a coordinator that never ran (the agent's
// word, read at once or waited for while nothing answers at its address) from a task that
// failed on its own (the coordinator answers).
func TestCoordinatorFailure(t *testing.T) {
	answering, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer answering.Close()
	closed, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	deadPort := strconv.Itoa(closed.Addr().(*net.TCPAddr).Port)
	closed.Close()
	livePort := strconv.Itoa(answering.Addr().(*net.TCPAddr).Port)
	for _, tc := range []struct {
		name  string
		port  string
		note  string // the agent's word ("" = none)
		after time.Duration
		want  string
	}{
		{name: "the agent's word", port: deadPort, note: "dmtcp_coordinator exited at start (exit status 3): no can do", want: "dmtcp_coordinator exited at start (exit status 3): no can do"},
		{name: "the agent's word, written after the task failed", port: deadPort, note: "exited at start", after: 50 * time.Millisecond, want: "exited at start"},
		{name: "the coordinator answers: the task failed on its own", port: livePort, want: ""},
		{name: "nothing answers, no word from the agent: the task's code stands", port: deadPort, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := t.TempDir()
			if tc.note != "" {
				go func() {
					time.Sleep(tc.after)
					_ = os.WriteFile(filepath.Join(run, "coordinator.failed"), []byte(tc.note+"\n"), 0o600)
				}()
			}
			env := []string{"SLURM_DMTCP_RUNDIR=" + run, "SLURM_DMTCP_COORD_HOST=127.0.0.1", "SLURM_DMTCP_COORD_PORT=" + tc.port}
			got := CoordinatorFailure(env, 300*time.Millisecond)
			if tc.want == "" {
				assert.Empty(t, got)
			} else {
				assert.Contains(t, got, tc.want)
			}
		})
	}
	assert.Empty(t, CoordinatorFailure([]string{"HOME=/h"}, time.Second), "not a task of the plugin")
}

func TestMPIDefaults(t *testing.T) {
	prefix := fakePrefix(t)
	gen := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(gen, "ckpt_a_1.dmtcp"), nil, 0o600))
	base := []string{"SLURM_DMTCP_ARGV0=./mpi", "SLURM_DMTCP_COORD_HOST=n1", "SLURM_DMTCP_COORD_PORT=1",
		"SLURM_DMTCP_DMTCP_PREFIX=" + prefix}

	_, _, env, err := Command(nil, base, "")
	require.NoError(t, err)
	assert.Contains(t, env, "OMPI_MCA_ess_singleton_isolated=1")
	assert.Contains(t, env, "UCX_MEM_MMAP_HOOK_MODE=none")
	assert.Contains(t, env, "UCX_TLS=self,tcp")
	assert.Contains(t, env, "UCX_VFS_ENABLE=n")

	// The task's own settings win, even empty ones.
	_, _, env, err = Command(nil, append(base, "UCX_TLS=rc", "OMPI_MCA_ess_singleton_isolated="), "")
	require.NoError(t, err)
	assert.Contains(t, env, "UCX_TLS=rc")
	assert.NotContains(t, env, "UCX_TLS=self,tcp")
	assert.Contains(t, env, "OMPI_MCA_ess_singleton_isolated=")
	assert.NotContains(t, env, "OMPI_MCA_ess_singleton_isolated=1")
	assert.Contains(t, env, "UCX_MEM_MMAP_HOOK_MODE=none")

	// dmtcp_restart gets the task's environment as it is: the images have their own.
	_, _, env, err = Command(nil, append(base, "SLURM_DMTCP_RESTORE="+gen), "")
	require.NoError(t, err)
	for _, kv := range env {
		assert.NotRegexp(t, `^(OMPI_MCA_|UCX_)`, kv)
	}
}

// The files DMTCP saved beside the images go back to the checkpoint folder the processes had.
func TestRestorePlacesFileCopies(t *testing.T) {
	prefix := fakePrefix(t)
	gen, cur := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(gen, "ckpt_py_1.dmtcp"), nil, 0o600))
	saved := filepath.Join(gen, "ckpt_py_1_files")
	require.NoError(t, os.Mkdir(saved, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(saved, "tmp_99047"), []byte("hello"), 0o600))
	// Left by an earlier restore: replaced.
	require.NoError(t, os.MkdirAll(filepath.Join(cur, "ckpt_py_1_files"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(cur, "ckpt_py_1_files", "old"), nil, 0o600))
	env := []string{"SLURM_DMTCP_ARGV0=./job.py", "SLURM_DMTCP_COORD_HOST=n1", "SLURM_DMTCP_COORD_PORT=1",
		"SLURM_DMTCP_DMTCP_PREFIX=" + prefix, "SLURM_DMTCP_CKPTDIR=" + cur, "SLURM_DMTCP_RESTORE=" + gen}

	_, argv, _, err := Command(nil, env, "")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(gen, "ckpt_py_1.dmtcp"), argv[len(argv)-1])
	b, err := os.ReadFile(filepath.Join(cur, "ckpt_py_1_files", "tmp_99047"))
	require.NoError(t, err)
	assert.Equal(t, "hello", string(b))
	assert.NoFileExists(t, filepath.Join(cur, "ckpt_py_1_files", "old"))
	b, err = os.ReadFile(filepath.Join(saved, "tmp_99047"))
	require.NoError(t, err)
	assert.Equal(t, "hello", string(b), "the generation keeps its own copy")

	// A launch copies nothing.
	cur2 := t.TempDir()
	_, _, _, err = Command(nil, []string{"SLURM_DMTCP_ARGV0=./job.py", "SLURM_DMTCP_COORD_HOST=n1", "SLURM_DMTCP_COORD_PORT=1",
		"SLURM_DMTCP_DMTCP_PREFIX=" + prefix, "SLURM_DMTCP_CKPTDIR=" + cur2}, "")
	require.NoError(t, err)
	entries, _ := os.ReadDir(cur2)
	assert.Empty(t, entries)
}
