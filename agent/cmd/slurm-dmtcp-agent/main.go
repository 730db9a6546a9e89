// Command slurm-dmtcp-agent is started by the slurm-dmtcp plugin in slurmstepd, as the
// job's user, once per --dmtcp batch job (or srun step outside one). See agent/ and
// spank/README.md. stdin is its lifeline (EOF: stop), fd 3 its ready pipe.
package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

func main() {
	if proto.AskedVersion(os.Args[1:]) {
		fmt.Println(proto.VersionLine("slurm-dmtcp-agent"))
		return
	}
	// fd 3 came without close-on-exec: keep it from the coordinator, or the plugin would
	// wait for the coordinator too before it sees the agent gone.
	syscall.CloseOnExec(proto.ReadyFD)
	ready := os.NewFile(proto.ReadyFD, "ready")
	if ready == nil {
		ready = os.Stderr
	}
	os.Exit(agent.Main(os.Args[1:], os.Stdin, ready, os.Stderr))
}
