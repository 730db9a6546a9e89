// Command slurm-dmtcp-nodeprobe records the facts of a node that decide
// whether a DMTCP checkpoint can be restored on it. See nodeprobe/README.md.
package main

import (
	"fmt"
	"os"

	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/cli"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

func main() {
	if proto.AskedVersion(os.Args[1:]) {
		fmt.Println(proto.VersionLine("slurm-dmtcp-nodeprobe"))
		return
	}
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
