package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The guard lets in, from other hosts, the addresses of the step's own nodes: every name
// Slurm has for each node, resolved, and NodeAddr as it is; never a loopback address.
func TestStepNodeAddresses(t *testing.T) {
	step := "StepId=42.3 UserId=1001 State=RUNNING Partition=debug NodeList=n[1-2] Nodes=2 CPUs=2 Tasks=2 Name=bash\n"
	node := func(name, host, addr string) string {
		return fmt.Sprintf("NodeName=%s Arch=x86_64 NodeAddr=%s NodeHostName=%s Version=22.05.8 OS=Linux 6.1 #1 SMP State=MIXED\n", name, addr, host)
	}
	hosts := map[string][]string{
		"n1": {"192.0.2.11", "2001:db8::11"}, "n1-eth": {"192.0.2.111"}, "n2": {"127.0.1.1"},
		"n2-ib": {"198.51.100.2"}, "lo-only": {"127.0.0.1", "::1"},
	}
	lookup := func(h string) ([]string, error) {
		if a, ok := hosts[h]; ok {
			return a, nil
		}
		return nil, fmt.Errorf("lookup %s: no such host", h)
	}
	for _, tc := range []struct {
		name      string
		stepOut   string
		nodesOut  string
		stepErr   error
		want      []string
		wantError string
	}{
		{"names resolve, NodeAddr numeric", step, node("n1", "n1-eth", "10.0.0.11") + node("n2", "n2", "10.0.0.12"), nil,
			[]string{"10.0.0.11", "10.0.0.12", "192.0.2.11", "192.0.2.111", "2001:db8::11"}, ""},
		{"names do not resolve (NodeAddr only)", step, node("x1", "x1", "10.0.0.11") + node("x2", "x2", "10.0.0.12"), nil,
			[]string{"10.0.0.11", "10.0.0.12"}, ""},
		{"NodeAddr a name", step, node("x1", "x1", "n2-ib") + node("x2", "x2", "10.0.0.12"), nil,
			[]string{"10.0.0.12", "198.51.100.2"}, ""},
		{"a node with loopback addresses only", step, node("lo-only", "lo-only", "lo-only") + node("x2", "x2", "10.0.0.12"), nil,
			nil, "node lo-only of the step has no address that is not a loopback one"},
		{"a node that does not resolve at all", step, node("x1", "x1", "x1"), nil,
			nil, "node x1 of the step has no address that is not a loopback one (NodeAddr=x1: lookup x1: no such host"},
		{"scontrol fails", "", "", errors.New("scontrol: Unable to contact slurm controller"),
			nil, "the step's nodes: scontrol: Unable to contact slurm controller"},
		{"no NodeList", "StepId=42.3 State=RUNNING\n", "", nil, nil, "no NodeList= in scontrol show step 42.3"},
		{"no node", step, "", nil, nil, "scontrol show node lists none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls []string
			run := func(_ context.Context, args ...string) ([]byte, error) {
				calls = append(calls, strings.Join(args, " "))
				if args[1] == "step" {
					return []byte(tc.stepOut), tc.stepErr
				}
				return []byte(tc.nodesOut), nil
			}
			got, err := stepNodeAddresses(context.Background(), run, lookup, "42", "3")
			if tc.wantError != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantError)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, []string{"show step -o 42.3", "show node -o n[1-2]"}, calls)
		})
	}
}
