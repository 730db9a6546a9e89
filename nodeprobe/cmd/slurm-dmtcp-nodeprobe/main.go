// Command slurm-dmtcp-nodeprobe records the facts of a node that decide
// whether a DMTCP checkpoint can be restored on it. See nodeprobe/README.md.
package main

import (
	"os"

	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
