package agent

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/slurm-dmtcp/slurm-dmtcp/coordinator"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/facts"
)

func TestDMTCPVersion(t *testing.T) {
	dir := t.TempDir()
	launch := filepath.Join(dir, "dmtcp_launch")
	assert.NoError(t, os.WriteFile(launch, []byte("#!/bin/sh\necho 'dmtcp_launch (DMTCP) 9.9'\n"), 0o755))
	inst := coordinator.Install{Launch: launch}
	for _, tc := range []struct {
		name string
		node NodeFacts
		want string
	}{
		{"the facts name this dmtcp_launch: no process", NodeFacts{Facts: facts.Facts{DMTCPVersion: "5.0", DMTCPLaunch: launch}}, "5.0"},
		{"the facts name another dmtcp_launch", NodeFacts{Facts: facts.Facts{DMTCPVersion: "5.0", DMTCPLaunch: "/usr/bin/dmtcp_launch"}}, "9.9"},
		{"the facts have no version", NodeFacts{Facts: facts.Facts{DMTCPLaunch: launch}}, "9.9"},
		{"no facts", NodeFacts{Err: errors.New("no cache")}, "9.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := dmtcpVersion(tc.node, inst)
			assert.NoError(t, err)
			assert.Equal(t, tc.want, v)
		})
	}
}
