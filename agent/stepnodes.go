package agent

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
)

// stepNodeAddresses is the numeric addresses of the nodes of step jobID.step, the only other
// hosts whose connections the coordinator guard lets through: the step's node list as
// slurmctld has it (scontrol show step), each node by its NodeName, NodeHostName and
// NodeAddr (scontrol show node), each name resolved by this node's resolver, as the job's
// processes resolve it (a numeric NodeAddr is taken as it is). Loopback addresses are left
// out (a loopback client is on this node: its socket's owner decides). A node without any
// address is an error: the guard would refuse its tasks.
func stepNodeAddresses(ctx context.Context, run slurm.Runner, lookup func(string) ([]string, error), jobID, step string) ([]string, error) {
	list, err := slurm.StepNodes(ctx, run, jobID, step)
	if err != nil {
		return nil, fmt.Errorf("the step's nodes: %w", err)
	}
	nodes, err := slurm.ShowNodes(ctx, run, list)
	if err != nil {
		return nil, fmt.Errorf("the addresses of the step's nodes %s: %w", list, err)
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("the addresses of the step's nodes %s: scontrol show node lists none", list)
	}
	seen := map[string]bool{}
	var addrs []string
	for _, n := range nodes {
		found := 0
		var failed []string
		for _, name := range []string{n.Name, n.HostName, n.Addr} {
			if name == "" || name == "(null)" {
				continue
			}
			ips := []string{name}
			if net.ParseIP(name) == nil {
				if ips, err = lookup(name); err != nil {
					failed = append(failed, err.Error())
					continue
				}
			}
			for _, a := range ips {
				ip := net.ParseIP(a)
				if ip == nil || ip.IsLoopback() {
					continue
				}
				found++
				if s := ip.String(); !seen[s] {
					seen[s] = true
					addrs = append(addrs, s)
				}
			}
		}
		if found == 0 {
			return nil, fmt.Errorf("node %s of the step has no address that is not a loopback one (NodeAddr=%s: %s)", n.Name, n.Addr, strings.Join(failed, "; "))
		}
	}
	sort.Strings(addrs)
	return addrs, nil
}
