package control

import (
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type fakeProc struct {
	env    map[int]string
	parent map[int]int
}

func (f fakeProc) Environ(pid int) ([]byte, error) {
	e, ok := f.env[pid]
	if !ok {
		return nil, fmt.Errorf("/proc/%d/environ: permission denied", pid)
	}
	return []byte(e), nil
}

func (f fakeProc) Parent(pid int) (int, error) {
	p, ok := f.parent[pid]
	if !ok {
		return 0, fmt.Errorf("no such process %d", pid)
	}
	return p, nil
}

func TestGuard(t *testing.T) {
	proc := fakeProc{
		env: map[int]string{
			100: "PATH=/bin\x00SLURM_JOB_ID=42\x00",
			101: "", // restored by DMTCP: empty environ, parent 100
			200: "SLURM_JOB_ID=43\x00",
			300: "HOME=/home/u\x00",
			400: "SLURM_JOB_ID=\x00",
			501: "", // restored by DMTCP under the step's slurmstepd (60), whose environ is root's
			502: "",
		},
		parent: map[int]int{100: 50, 101: 100, 200: 50, 300: 1, 400: 1, 50: 1, 501: 502, 502: 60, 60: 1},
	}
	g := Guard{UID: 1000, JobID: "42", StepPID: 60, Proc: proc}
	for _, tc := range []struct {
		name string
		cred Cred
		err  string
	}{
		{"same job", Cred{PID: 100, UID: 1000}, ""},
		{"job from a parent", Cred{PID: 101, UID: 1000}, ""},
		{"root", Cred{PID: 300, UID: 0}, ""},
		{"other user", Cred{PID: 100, UID: 1001}, "uid 1001 is not the job's user (uid 1000)"},
		{"other job", Cred{PID: 200, UID: 1000}, "belongs to job 43; this agent serves job 42 only"},
		{"no job", Cred{PID: 300, UID: 1000}, "not inside a Slurm job"},
		{"empty job id", Cred{PID: 400, UID: 1000}, "not inside a Slurm job"},
		{"gone", Cred{PID: 999, UID: 1000}, "not inside a Slurm job"},
		{"restored under the step", Cred{PID: 501, UID: 1000}, ""},
		{"the step's own slurmstepd is not a user process", Cred{PID: 60, UID: 1000}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := g.Check(tc.cred)
			if tc.err == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tc.err)
		})
	}
}

func TestPeerJobLoopBounded(t *testing.T) {
	// A cycle (cannot happen in /proc, but a fake can) ends after maxAncestors steps.
	p := fakeProc{env: map[int]string{5: "", 6: ""}, parent: map[int]int{5: 6, 6: 5}}
	job, under := PeerJob(p, 5, 0)
	assert.Equal(t, "", job)
	assert.False(t, under)
}

func TestSysProc(t *testing.T) {
	t.Setenv("SLURM_JOB_ID", "") // only the exec-time environment counts: this changes nothing
	ppid, err := SysProc{}.Parent(os.Getpid())
	require.NoError(t, err)
	assert.Equal(t, os.Getppid(), ppid)
	env, err := SysProc{}.Environ(os.Getpid())
	require.NoError(t, err)
	assert.NotEmpty(t, env)
}

func TestPeerCredSocketpair(t *testing.T) {
	dir, err := os.MkdirTemp("", "ctl")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	ln, err := Listen(dir + "/s")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		c, err := net.Dial("unix", dir+"/s")
		if err == nil {
			defer c.Close()
			_, _ = c.Read(make([]byte, 1))
		}
	}()
	c, err := ln.AcceptUnix()
	require.NoError(t, err)
	defer c.Close()
	cred, err := PeerCred(c)
	require.NoError(t, err)
	assert.Equal(t, Cred{PID: os.Getpid(), UID: os.Getuid(), GID: os.Getgid()}, cred)
}
