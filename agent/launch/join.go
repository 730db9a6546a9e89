package launch

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto/procstat"
)

// A task whose program registers with the coordinator once DMTCP 5.0 has suspended the
// computation for a checkpoint ends the coordinator itself: the registration meets an
// assertion ("checkpoint resend attempted after workers suspended"), the coordinator exits
// with 99, and the checkpoint and every process of the step go with it. So a task that
// starts (dmtcp_launch) holds the step's fork lock (proto.ForkLockFile) shared until its
// program runs under DMTCP, with DMTCP's checkpoint thread started: it waits out a
// checkpoint that is being taken, and a checkpoint that is about to be taken waits for it
// (a bounded time, agent/forklock.go).

// joinWait bounds a task's wait for a checkpoint in progress; after it the task starts
// anyway, and says so.
const joinWait = 2 * time.Minute

// joinedMax bounds how long a task holds the lock for a program that does not come up
// under DMTCP (one that DMTCP cannot load into, say): checkpoints are not held back longer.
const joinedMax = 30 * time.Second

// joinPoll is how often the lock and the starting program are looked at.
const joinPoll = 2 * time.Millisecond

// Launches says whether the task starts its program afresh under DMTCP (dmtcp_launch), the
// only start that registers new processes with a coordinator that may be checkpointing;
// a restore (proto.KeyRestore) brings back processes of the computation.
func Launches(task []string) bool { return lookup(task, proto.EnvName(proto.KeyRestore)) == "" }

// joinLock is a task's shared hold of the fork lock while its program joins.
type joinLock struct{ fd int }

// holdJoin takes the fork lock of runDir shared, waiting at most wait for a checkpoint that
// holds it: nil, and no error, when there is no lock to take (no runtime folder, or the
// agent has not made it); nil and an error when the wait ran out.
func holdJoin(runDir string, wait time.Duration) (*joinLock, error) {
	if runDir == "" {
		return nil, nil
	}
	fd, err := syscall.Open(filepath.Join(runDir, proto.ForkLockFile), syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, nil
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(fd, syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			return &joinLock{fd: fd}, nil
		}
		if (err != syscall.EWOULDBLOCK && err != syscall.EINTR) || !time.Now().Before(deadline) {
			_ = syscall.Close(fd)
			return nil, fmt.Errorf("the step's checkpoint still held its lock after %s: the task starts without waiting longer", wait)
		}
		time.Sleep(joinPoll)
	}
}

// release lets the lock go: its only descriptor is closed. A nil lock holds nothing.
func (l *joinLock) release() {
	if l != nil {
		_ = syscall.Close(l.fd)
	}
}

// releaseWhenJoined lets the lock go once the process pid runs under DMTCP (joined), or is
// gone, or max has passed, and says which.
func (l *joinLock) releaseWhenJoined(pid int, max time.Duration) string {
	if l == nil {
		return ""
	}
	defer l.release()
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		if why := joined("/proc", pid); why != "" {
			return why
		}
		time.Sleep(joinPoll)
	}
	return fmt.Sprintf("not under DMTCP after %s", max)
}

// joined says why the process pid no longer needs the lock ("" while it does): it has
// ended, or it runs its program (no longer dmtcp_launch, which registered it with the
// coordinator) with DMTCP's checkpoint thread started (a second thread, which libdmtcp
// makes before the program's main).
func joined(procRoot string, pid int) string {
	st, err := procstat.Read(procRoot, pid)
	if err != nil || st.Gone() {
		return "ended"
	}
	exe, err := os.Readlink(filepath.Join(procRoot, strconv.Itoa(pid), "exe"))
	if err != nil {
		return "ended"
	}
	if filepath.Base(exe) == "dmtcp_launch" || st.Threads < 2 {
		return ""
	}
	return "joined"
}
