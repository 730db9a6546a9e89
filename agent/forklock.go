package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// ForkLockFile, in the step's runtime folder, is the lock that keeps forks and joining
// tasks of the computation apart from the start of a checkpoint (proto.ForkLockFile).
const ForkLockFile = proto.ForkLockFile

// forkLockWait bounds the agent's wait for the forks in flight and the tasks that are
// joining the computation (a task's program, loaded under DMTCP, takes some hundred
// milliseconds, and seconds on a loaded node): a checkpoint is never put off for long.
const forkLockWait = 5 * time.Second

// forkLock is the agent's side of ForkLockFile.
type forkLock struct{ f *os.File }

// openForkLock makes ForkLockFile in runDir (0600, the job's user's) and opens it.
func openForkLock(runDir string) (*forkLock, error) {
	f, err := os.OpenFile(filepath.Join(runDir, ForkLockFile), os.O_RDONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("fork lock: %w", err)
	}
	return &forkLock{f: f}, nil
}

// hold takes the lock exclusively, waiting at most max for the forks that hold it: whether
// it got it, and how to let it go. A nil lock holds nothing.
func (l *forkLock) hold(ctx context.Context, max time.Duration) (bool, func()) {
	if l == nil {
		return false, func() {}
	}
	fd := int(l.f.Fd())
	deadline := time.Now().Add(max)
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return true, func() { _ = syscall.Flock(fd, syscall.LOCK_UN) }
		}
		if err != syscall.EWOULDBLOCK && err != syscall.EINTR {
			return false, func() {}
		}
		if !time.Now().Before(deadline) || ctx.Err() != nil {
			return false, func() {}
		}
		time.Sleep(time.Millisecond)
	}
}

func (l *forkLock) close() {
	if l != nil {
		_ = l.f.Close()
	}
}
