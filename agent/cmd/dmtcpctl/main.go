// Command dmtcpctl controls the checkpoints of a --dmtcp Slurm job: status, checkpoint,
// wait, interval, generations. See agent/dmtcpctl and docs/user.md. It is built without cgo
// (a static executable), so that inside a --dmtcp job DMTCP does not load into it.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/dmtcpctl"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// DMTCP keeps its own descriptors at 821 and up (PROTECTED_FD_START = 820 in DMTCP's
// protectedfds.h; about 20 of them), the coordinator connection first.
const dmtcpFirstFD, dmtcpLastFD = 821, 860

func main() {
	if proto.AskedVersion(os.Args[1:]) {
		fmt.Println(proto.VersionLine("dmtcpctl"))
		return
	}
	// Started from a process under DMTCP (a --dmtcp job script), dmtcpctl still holds the
	// descriptors DMTCP gave the forked child before it exec'd this static executable,
	// DMTCP does not load into it, and the coordinator would count it as a process and wait
	// for it at every checkpoint, forever. Closing them makes the coordinator forget it.
	if strings.Contains(os.Getenv("LD_PRELOAD"), "libdmtcp") {
		for fd := dmtcpFirstFD; fd <= dmtcpLastFD; fd++ {
			_ = syscall.Close(fd)
		}
	}
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	os.Exit(dmtcpctl.Main(os.Args[1:], dmtcpctl.Env{
		Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Executable: self,
		Srun: func(ctx context.Context, args, env []string) (int, error) {
			cmd := exec.CommandContext(ctx, "srun", args...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr, cmd.Env = nil, os.Stdout, os.Stderr, env
			err := cmd.Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return ee.ExitCode(), nil
			}
			if err != nil {
				return 0, err
			}
			return 0, nil
		},
		JobInfo: func(ctx context.Context, id string) (slurm.Record, error) {
			out, err := slurm.Scontrol("scontrol", slurm.DefaultTimeout)(ctx, "show", "job", "-o", id)
			if err != nil {
				return nil, err
			}
			return slurm.ParseRecord(string(out)), nil
		},
	}))
}
