package control

import (
	"bytes"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"

	"github.com/slurm-dmtcp/slurm-dmtcp/proto/procstat"
)

// Cred is what the kernel says about the process at the other end of a connection.
type Cred struct {
	PID, UID, GID int
}

// PeerCred reads SO_PEERCRED of a Unix connection.
func PeerCred(c *net.UnixConn) (Cred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Cred{}, fmt.Errorf("peer credentials: %w", err)
	}
	var uc *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		uc, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Cred{}, fmt.Errorf("peer credentials: %w", err)
	}
	if serr != nil {
		return Cred{}, fmt.Errorf("peer credentials (SO_PEERCRED): %w", serr)
	}
	return Cred{PID: int(uc.Pid), UID: int(uc.Uid), GID: int(uc.Gid)}, nil
}

// Proc reads what the peer check needs from /proc (a fake in tests).
type Proc interface {
	Environ(pid int) ([]byte, error)
	Parent(pid int) (int, error)
}

// SysProc reads the real /proc.
type SysProc struct{}

// Environ is /proc/<pid>/environ.
func (SysProc) Environ(pid int) ([]byte, error) {
	return os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
}

// Parent is the ppid field of /proc/<pid>/stat.
func (SysProc) Parent(pid int) (int, error) {
	st, err := procstat.Read("/proc", pid)
	if err != nil {
		return 0, err
	}
	return st.PPid, nil
}

// maxAncestors bounds the walk up the process tree.
const maxAncestors = 32

// PeerJob walks up from pid to the nearest process with SLURM_JOB_ID in its environment
// and returns that job id ("" when none has one). under is true when the walk passes
// through stepPID first (the peer descends from that process). /proc/<pid>/environ is the
// environment the process was exec'd with; DMTCP's restart leaves it empty for the processes
// it restores, so those inherit their job from their parents, or are known by their place
// under the step's slurmstepd.
func PeerJob(p Proc, pid, stepPID int) (job string, under bool) {
	for i := 0; i < maxAncestors && pid > 1; i++ {
		if stepPID > 1 && pid == stepPID {
			return "", true
		}
		if env, err := p.Environ(pid); err == nil {
			for _, kv := range bytes.Split(env, []byte{0}) {
				if v, ok := bytes.CutPrefix(kv, []byte("SLURM_JOB_ID=")); ok && len(v) > 0 {
					return string(v), false
				}
			}
		}
		ppid, err := p.Parent(pid)
		if err != nil {
			return "", false
		}
		pid = ppid
	}
	return "", false
}

// Guard decides who may use the socket: the job's user (or root) from inside the same job.
type Guard struct {
	UID   int    // the agent's (job's) uid
	JobID string // the agent's job
	// StepPID is the agent's parent, the step's slurmstepd: its descendants are in the job
	// even when their environment cannot be read (processes restored by DMTCP). 0: none.
	StepPID int
	Proc    Proc
}

// Check returns nil when the peer may talk to the agent, else why not.
func (g Guard) Check(c Cred) error {
	if c.UID == 0 {
		return nil // root can reach the job's processes anyway
	}
	if c.UID != g.UID {
		return fmt.Errorf("uid %d is not the job's user (uid %d)", c.UID, g.UID)
	}
	job, under := PeerJob(g.Proc, c.PID, g.StepPID)
	switch {
	case under, job == g.JobID:
		return nil
	case job == "":
		return fmt.Errorf("process %d is not inside a Slurm job (no SLURM_JOB_ID in it or its parents); this agent serves job %s only: use dmtcpctl --job %s", c.PID, g.JobID, g.JobID)
	default:
		return fmt.Errorf("process %d belongs to job %s; this agent serves job %s only", c.PID, job, g.JobID)
	}
}
