package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/cache"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/facts"
)

const (
	td         = "../facts/testdata"
	intelRoot  = td + "/roots/intel-skylake-rhel9"
	amdRoot    = td + "/roots/amd-opteron-rocky8"
	intelJSON  = td + "/facts/intel-skylake-rhel9.json"
	amdJSON    = td + "/facts/amd-opteron-rocky8.json"
	intelMan   = td + "/manifest-intel.json"
	armMan     = td + "/manifest-arm64.json"
	notFacts   = td + "/not-facts.json"
	dmtcp300   = td + "/dmtcp-3.0.0"
	intelClass = "c-7b9bcaf97d"
)

var now = time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)

func testEnv(stdout, stderr *bytes.Buffer) env {
	return env{
		stdout: stdout, stderr: stderr,
		now:           func() time.Time { return now },
		notifySignals: func(chan<- os.Signal, ...os.Signal) func() { return func() {} },
		sdNotify:      func(string) (bool, error) { return false, nil },
		watchdog:      func() (time.Duration, error) { return 0, nil },
	}
}

func runTest(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, testEnv(&out, &errOut))
	return code, out.String(), errOut.String()
}

func TestRun(t *testing.T) {
	db := filepath.Join(t.TempDir(), "sub", "nodefacts.db")
	missingDB := filepath.Join(t.TempDir(), "none.db")
	intel := []string{"--root", intelRoot, "--dmtcp-prefix", dmtcp300}
	amd := []string{"--root", amdRoot, "--dmtcp-prefix", td + "/dmtcp-2.6.0"}
	join := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name      string
		args      []string
		code      int
		stdout    []string
		stderr    []string
		notStdout []string
	}{
		{name: "no command", args: nil, code: ExitUsage, stderr: []string{"usage:", "commands:"}},
		{name: "help", args: []string{"help"}, code: ExitOK, stdout: []string{"usage:", "exit codes"}},
		{name: "--help", args: []string{"--help"}, code: ExitOK, stdout: []string{"usage:"}},
		{name: "command --help", args: []string{"check", "--help"}, code: ExitOK, stdout: []string{"usage:"}},
		{name: "unknown command", args: []string{"prob"}, code: ExitUsage, stderr: []string{`unknown command "prob"`, "probe, show, diff, check, serve"}},
		{name: "unknown flag", args: []string{"probe", "--nope"}, code: ExitUsage, stderr: []string{"probe:", "-nope"}},
		{name: "global flag without value", args: []string{"--db"}, code: ExitUsage, stderr: []string{"flag needs an argument", "-db"}},
		{name: "probe with an argument", args: []string{"probe", "extra"}, code: ExitUsage, stderr: []string{`got 1 ("extra")`, "probe [--json]"}},

		{name: "probe records", args: join([]string{"probe", "--db", db}, intel), code: ExitOK, stdout: []string{"class " + intelClass + " changed"}},
		{name: "probe again is unchanged", args: join([]string{"--db", db, "probe"}, intel), code: ExitOK, stdout: []string{"class " + intelClass + " unchanged"}},
		{name: "show", args: []string{"show", "--db", db}, code: ExitOK, stdout: []string{"class:            " + intelClass, "GenuineIntel", "x86-64 level:     v4", "avx512f", "vdso / vvar:      8192 / 16384 bytes", "(2 probes)"}},
		{name: "show history", args: []string{"show", "--db", db, "--history", "5"}, code: ExitOK, stdout: []string{intelClass, "probes 2", "glibc 2.34", "dmtcp 3.0.0"}},
		{name: "show bad history", args: []string{"show", "--db", db, "--history", "-1"}, code: ExitUsage, stderr: []string{"--history -1"}},
		{name: "show without a database", args: []string{"show", "--db", missingDB}, code: ExitError, stderr: []string{"no facts recorded in " + missingDB, "probe"}},

		{name: "diff needs two files", args: []string{"diff", intelJSON}, code: ExitUsage, stderr: []string{"diff: want 2 argument(s), got 1", `"-" for this node`}},
		{name: "diff - -", args: []string{"diff", "-", "-"}, code: ExitUsage, stderr: []string{`at most one of FILE_A and FILE_B may be "-"`}},
		{name: "diff same file", args: []string{"diff", intelJSON, intelJSON}, code: ExitOK, stdout: []string{"no differences"}},
		{name: "diff blocking", args: []string{"diff", intelJSON, amdJSON}, code: ExitIncompatible, stdout: []string{"blocking isa_features", "avx512f", "blocking vvar_size: 16384 (A) vs 12288 (B)", "info     hostname"}},
		{name: "diff this node against its own facts", args: join([]string{"diff", "-", intelJSON}, intel), code: ExitOK, stdout: []string{"no differences"}},
		{name: "diff flags after files", args: []string{"diff", intelJSON, amdJSON, "--json"}, code: ExitIncompatible, stdout: []string{`"compatible": false`, `"fact": "vvar_size"`}},
		{name: "diff missing file", args: []string{"diff", intelJSON, "nope.json"}, code: ExitError, stderr: []string{"nope.json", "no such file"}},
		{name: "diff not facts", args: []string{"diff", intelJSON, notFacts}, code: ExitError, stderr: []string{notFacts, `"node_facts"`}},
		{name: "diff accepts a manifest", args: []string{"diff", intelMan, intelJSON}, code: ExitOK, stdout: []string{"no differences"}},

		{name: "check needs a manifest", args: []string{"check"}, code: ExitUsage, stderr: []string{"check: want 1 argument(s), got 0 (none)", `"node_facts"`}},
		{name: "check compatible", args: join([]string{"check", intelMan}, intel), code: ExitOK, stdout: []string{"compatible: the checkpoint taken on cn-intel01 (class " + intelClass + ")"}, notStdout: []string{"info"}},
		{name: "check on an older CPU", args: join([]string{"check", intelMan}, amd), code: ExitIncompatible, stdout: []string{"incompatible:", "blocking isa_features: adx,avx2,avx512bw", "SIGILL", "blocking x86_64_level: v4 (checkpoint) vs v2 (node)", "blocking dmtcp_version: 3.0.0 (checkpoint) vs 2.6.0 (node)", "warning  kernel_release"}, notStdout: []string{"info"}},
		{name: "check --all shows info", args: join([]string{"check", "--all", intelMan}, amd), code: ExitIncompatible, stdout: []string{"info     hostname"}},
		{name: "check other arch", args: join([]string{"check", armMan}, intel), code: ExitIncompatible, stdout: []string{"blocking arch: aarch64 (checkpoint) vs x86_64 (node)"}},
		{name: "check without DMTCP on the node", args: []string{"check", intelMan, "--root", intelRoot, "--dmtcp-prefix", t.TempDir()}, code: ExitIncompatible, stdout: []string{"DMTCP is not installed on the node"}, stderr: []string{"note: dmtcp: not installed under prefix"}},
		{name: "check a file without node_facts", args: join([]string{"check", intelJSON}, intel), code: ExitError, stderr: []string{intelJSON, `no top-level "node_facts" object`}},
		{name: "check missing manifest", args: join([]string{"check", "nope.json"}, intel), code: ExitError, stderr: []string{"read manifest", "nope.json"}},

		{name: "serve bad interval", args: []string{"serve", "--every", "0s"}, code: ExitUsage, stderr: []string{"--every 0s", "10m"}},
		{name: "serve unparsable interval", args: []string{"serve", "--every", "ten"}, code: ExitUsage, stderr: []string{"serve:", "ten"}},
		{name: "bad root", args: []string{"probe", "--db", db, "--root", "/nonexistent-root"}, code: ExitError, stderr: []string{"collect facts", "/nonexistent-root"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runTest(t, tt.args...)
			assert.Equal(t, tt.code, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			for _, s := range tt.stdout {
				assert.Contains(t, stdout, s)
			}
			for _, s := range tt.notStdout {
				assert.NotContains(t, stdout, s)
			}
			for _, s := range tt.stderr {
				assert.Contains(t, stderr, s)
			}
			if tt.code == ExitUsage && len(tt.args) > 0 && tt.args[0] != "help" {
				assert.Contains(t, stderr, "slurm-dmtcp-nodeprobe help")
			}
		})
	}
}

func TestJSONOutputs(t *testing.T) {
	db := filepath.Join(t.TempDir(), "nodefacts.db")
	root := []string{"--root", intelRoot, "--dmtcp-prefix", dmtcp300, "--db", db}

	code, out, _ := runTest(t, append([]string{"probe", "--json"}, root...)...)
	require.Equal(t, ExitOK, code)
	var pr probeResult
	require.NoError(t, json.Unmarshal([]byte(out), &pr))
	assert.Equal(t, intelClass, pr.Class)
	assert.True(t, pr.Changed)

	// show --json prints facts that diff and check read back.
	code, out, _ = runTest(t, "show", "--json", "--db", db)
	require.Equal(t, ExitOK, code)
	shown := filepath.Join(t.TempDir(), "shown.json")
	require.NoError(t, os.WriteFile(shown, []byte(out), 0o644))
	f, err := facts.ReadFile(shown)
	require.NoError(t, err)
	assert.Equal(t, intelClass, facts.Class(f))

	code, out, _ = runTest(t, "show", "--json", "--history", "3", "--db", db)
	require.Equal(t, ExitOK, code)
	var hist []cache.Entry
	require.NoError(t, json.Unmarshal([]byte(out), &hist))
	require.Len(t, hist, 1)

	code, out, _ = runTest(t, append([]string{"check", "--json", intelMan}, root...)...)
	require.Equal(t, ExitOK, code)
	var cr checkReport
	require.NoError(t, json.Unmarshal([]byte(out), &cr))
	assert.True(t, cr.Compatible)
	assert.Equal(t, intelClass, cr.CheckpointClass)
	assert.Empty(t, cr.Differences)

	code, out, _ = runTest(t, "diff", "--json", shown, amdJSON)
	require.Equal(t, ExitIncompatible, code)
	var dr diffReport
	require.NoError(t, json.Unmarshal([]byte(out), &dr))
	assert.False(t, dr.Compatible)
	assert.NotEmpty(t, dr.Differences)
}

func TestProbeRecoversCorruptCache(t *testing.T) {
	db := filepath.Join(t.TempDir(), "nodefacts.db")
	require.NoError(t, os.WriteFile(db, []byte(strings.Repeat("not sqlite\n", 500)), 0o644))

	code, _, stderr := runTest(t, "show", "--db", db)
	assert.Equal(t, ExitError, code)
	assert.Contains(t, stderr, db)
	assert.Contains(t, stderr, "corrupt")

	code, stdout, stderr := runTest(t, "probe", "--db", db, "--root", intelRoot, "--dmtcp-prefix", dmtcp300)
	require.Equal(t, ExitOK, code, stderr)
	assert.Contains(t, stdout, "changed")
	moved := db + ".corrupt-20250506T070809Z"
	assert.Contains(t, stderr, "moved it to "+moved)
	assert.FileExists(t, moved)
}
