// Command slurm-dmtcp-exec is what a --dmtcp task execs first (the plugin put it in
// argv[0]): it replaces itself with dmtcp_launch joined to the step's coordinator, running
// the task's own command with its own arguments, environment, folder and stdio.
package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/launch"
)

func main() {
	path, argv, env, err := launch.Command(os.Args[1:], os.Environ())
	if err != nil {
		os.Exit(launch.Fail(err))
	}
	err = syscall.Exec(path, argv, env)
	os.Exit(launch.Fail(fmt.Errorf("exec %s: %w", path, err)))
}
