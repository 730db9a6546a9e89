package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/cache"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/facts"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto/manifest"
)

// Fact sets recorded on other machines (nodeprobe/facts/testdata).
const factsDir = "../nodeprobe/facts/testdata/facts/"

func recorded(t *testing.T, name string) facts.Facts {
	t.Helper()
	f, err := facts.ReadFile(factsDir + name + ".json")
	require.NoError(t, err)
	return f
}

// writeGeneration writes a generation folder whose manifest carries nodeFacts (nil: none).
func writeGeneration(t *testing.T, nodeFacts json.RawMessage) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "gen-000003")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	img := []byte("image")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ckpt_a.dmtcp"), img, 0o600))
	_, sum, err := manifest.HashFile(filepath.Join(dir, "ckpt_a.dmtcp"))
	require.NoError(t, err)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m := &manifest.Manifest{Meta: manifest.Meta{JobID: 42, StepID: "batch", User: "alice", Node: "cn01",
		Reason: manifest.ReasonSignal, StartTime: start, EndTime: start.Add(time.Second), DMTCPVersion: "3.0.0",
		NodeFacts: nodeFacts}, Generation: 3,
		Files: []manifest.File{{Path: "ckpt_a.dmtcp", Size: int64(len(img)), SHA256: sum, Mode: 0o600}}}
	b, err := manifest.Marshal(m)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, manifest.FileName), b, 0o600))
	return dir
}

func factsJSON(t *testing.T, f facts.Facts) json.RawMessage {
	b, err := json.Marshal(f)
	require.NoError(t, err)
	return b
}

type fakeRequeue struct {
	calls  []string
	result RequeueResult
	err    error
}

func (f *fakeRequeue) requeue(_ context.Context, jobID, feature string) (RequeueResult, error) {
	f.calls = append(f.calls, jobID+" "+feature)
	return f.result, f.err
}

func TestPlacementCheck(t *testing.T) {
	intel := recorded(t, "intel-skylake-rhel9")
	amd := recorded(t, "amd-opteron-rocky8")
	arm := recorded(t, "arm64-neoverse-debian12")
	newKernel := intel
	newKernel.KernelRelease = "5.14.0-999.el9.x86_64"
	intelClass := facts.Class(intel)
	feature := "dmtcp_" + intelClass

	plan := func(gen string) []proto.KV {
		return []proto.KV{{Key: proto.KeyRestore, Value: gen}, {Key: proto.KeyRestoreNote, Value: "restart 1: restoring generation 3"}}
	}
	for _, tc := range []struct {
		name      string
		ckpt      *facts.Facts // nil: the manifest has no node_facts
		node      NodeFacts
		policy    string
		step      string
		rq        fakeRequeue
		wantNote  string // compatible: a note added to the plan ("" = plan unchanged)
		wantErr   []string
		wantCalls []string
	}{
		{name: "same node class restores", ckpt: &intel, node: NodeFacts{Facts: intel}},
		{name: "other kernel: restores with a warning", ckpt: &intel, node: NodeFacts{Facts: newKernel},
			wantNote: "restores on this node (class " + facts.Class(newKernel) + ") with warnings: kernel release differs"},
		{name: "no facts in the checkpoint", node: NodeFacts{Facts: intel}, wantNote: "gen-000003 carries no node facts"},
		{name: "node facts unknown", ckpt: &intel, node: NodeFacts{Err: errors.New("node facts: no cache, no cpuinfo")},
			wantNote: "this node's facts are unknown (node facts: no cache, no cpuinfo)"},
		{name: "older CPU: requeued to the checkpoint's class", ckpt: &intel, node: NodeFacts{Facts: amd}, policy: OnIncompatibleRequeue, step: "batch",
			rq: fakeRequeue{result: RequeueResult{Constraint: "ib&" + feature}},
			wantErr: []string{"restart 1: checkpoint gen-000003 was taken on node cn01 (class " + intelClass + ") and cannot be restored on this node",
				"lacks instruction sets", "avx512f", "the job was requeued, constrained to nodes of the checkpoint's class (Features=ib&" + feature + ")"},
			wantCalls: []string{"42 " + feature}},
		{name: "other architecture: held when no node has the class", ckpt: &intel, node: NodeFacts{Facts: arm}, policy: OnIncompatibleRequeue, step: "batch",
			rq:        fakeRequeue{result: RequeueResult{Held: true, Why: "Slurm refused Features=" + feature}},
			wantErr:   []string{"CPU architecture differs (x86_64 vs aarch64)", "the job was requeued and is held: Slurm refused Features=" + feature},
			wantCalls: []string{"42 " + feature}},
		{name: "requeue fails", ckpt: &intel, node: NodeFacts{Facts: amd}, policy: OnIncompatibleRequeue, step: "batch",
			rq:        fakeRequeue{err: errors.New("scontrol requeuehold 42: Access/permission denied")},
			wantErr:   []string{"requeueing the job to nodes with feature " + feature + " failed: scontrol requeuehold 42: Access/permission denied"},
			wantCalls: []string{"42 " + feature}},
		{name: "policy fail", ckpt: &intel, node: NodeFacts{Facts: amd}, policy: OnIncompatibleFail, step: "batch",
			wantErr: []string{"Nothing was restored and the job fails (plugstack.conf on_incompatible=fail)", "for a node with feature " + feature}},
		{name: "an srun step is never requeued", ckpt: &intel, node: NodeFacts{Facts: amd}, policy: OnIncompatibleRequeue, step: "0",
			wantErr: []string{"only batch jobs are requeued"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var nf json.RawMessage
			if tc.ckpt != nil {
				nf = factsJSON(t, *tc.ckpt)
			}
			gen := writeGeneration(t, nf)
			var logs bytes.Buffer
			lg := logrus.New()
			lg.SetOutput(&logs)
			var recorded []string
			p := Placement{Policy: tc.policy, Node: tc.node, Requeue: tc.rq.requeue, Log: logrus.NewEntry(lg),
				Requeued: func(g, detail string) { recorded = append(recorded, filepath.Base(g)+": "+detail) }}
			step := tc.step
			if step == "" {
				step = "batch"
			}
			got, err := p.Check(context.Background(), Config{JobID: "42", Step: step, RestartCount: 1}, plan(gen))
			assert.Equal(t, tc.wantCalls, tc.rq.calls)
			// Every requeue that Slurm took (held or not) is recorded for the job's history.
			if len(tc.wantCalls) > 0 && tc.rq.err == nil {
				require.Len(t, recorded, 1)
				assert.Contains(t, recorded[0], filepath.Base(gen)+": class ")
			} else {
				assert.Empty(t, recorded)
			}
			if tc.wantErr != nil {
				require.Error(t, err)
				var ae *Error
				require.ErrorAs(t, err, &ae)
				assert.Equal(t, ExitIncompatible, ae.Code)
				for _, w := range tc.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				assert.NotContains(t, err.Error(), "\n", "one line for the job's error output")
				assert.Nil(t, got)
				assert.Contains(t, logs.String(), "checkpoint incompatible with this node")
				return
			}
			require.NoError(t, err)
			require.Len(t, got, 2)
			assert.Equal(t, plan(gen)[0], got[0])
			if tc.wantNote == "" {
				assert.Equal(t, plan(gen), got)
			} else {
				assert.True(t, strings.HasPrefix(got[1].Value, "restart 1: restoring generation 3 | "), got[1].Value)
				assert.Contains(t, got[1].Value, tc.wantNote)
			}
		})
	}
}

func TestPlacementNothingToRestore(t *testing.T) {
	p := Placement{Requeue: func(context.Context, string, string) (RequeueResult, error) {
		t.Fatal("no requeue without a restore")
		return RequeueResult{}, nil
	}}
	for _, extra := range [][]proto.KV{nil, {{Key: proto.KeyRestoreNote, Value: "restart 1: no verified checkpoint generation"}}} {
		got, err := p.Check(context.Background(), Config{JobID: "42", Step: "batch"}, extra)
		require.NoError(t, err)
		assert.Equal(t, extra, got)
	}
}

func TestLoadNodeFacts(t *testing.T) {
	dir := t.TempDir()
	inCache := recorded(t, "intel-skylake-rhel9")
	here, err := facts.Quick(facts.Options{})
	require.NoError(t, err)
	running := here.KernelRelease
	inCache.Arch, inCache.KernelRelease, inCache.VDSOSize, inCache.VVARSize, inCache.GlibcVersion =
		here.Arch, here.KernelRelease, here.VDSOSize, here.VVARSize, here.GlibcVersion
	db := filepath.Join(dir, "nodefacts.db")
	c, err := cache.Open(db)
	require.NoError(t, err)
	seen := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	_, err = c.Record(inCache, seen)
	require.NoError(t, err)
	require.NoError(t, c.Close())

	oldGlibc := filepath.Join(dir, "old-glibc.db")
	c, err = cache.Open(oldGlibc)
	require.NoError(t, err)
	upgraded := inCache
	upgraded.GlibcVersion = "2.17"
	_, err = c.Record(upgraded, seen)
	require.NoError(t, err)
	require.NoError(t, c.Close())

	stale := filepath.Join(dir, "stale.db")
	c, err = cache.Open(stale)
	require.NoError(t, err)
	_, err = c.Record(recorded(t, "intel-skylake-rhel9"), seen)
	require.NoError(t, err)
	require.NoError(t, c.Close())

	for _, tc := range []struct {
		name, path string
		fromCache  bool
		source     string
	}{
		{"from the cache", db, true, "cache " + db + " (probed 2026-01-02T03:04:05Z)"},
		{"no cache file: collected", filepath.Join(dir, "none.db"), false, "collected now (open cache read-only: stat " + filepath.Join(dir, "none.db")},
		{"cache of another kernel: collected", stale, false, "is stale: it holds kernel 5.14.0-362.8.1.el9_3.x86_64, now " + running},
		{"cache of another glibc: collected", oldGlibc, false, "is stale: it holds glibc 2.17, now " + here.GlibcVersion},
		{"no cache configured: collected", "", false, "collected now (no cache configured)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nf := LoadNodeFacts(context.Background(), tc.path, "", 10*time.Second)
			require.NoError(t, nf.Err)
			assert.Contains(t, nf.Source, tc.source)
			if tc.fromCache {
				assert.Equal(t, inCache.CPUModelName, nf.Facts.CPUModelName)
			} else {
				assert.Equal(t, running, nf.Facts.KernelRelease, "this node's own facts")
			}
			var back facts.Facts
			require.NoError(t, json.Unmarshal(nf.ManifestFacts(), &back))
			assert.Equal(t, facts.Class(nf.Facts), facts.Class(back))
		})
	}
	assert.Nil(t, NodeFacts{Err: errors.New("x")}.ManifestFacts(), "no facts: no node_facts in manifests")
}

func TestAddNote(t *testing.T) {
	assert.Equal(t, []proto.KV{{Key: proto.KeyRestoreNote, Value: "n"}}, addNote(nil, "n"))
	assert.Equal(t, []proto.KV{{Key: proto.KeyRestore, Value: "/g"}, {Key: proto.KeyRestoreNote, Value: "a | n"}},
		addNote([]proto.KV{{Key: proto.KeyRestore, Value: "/g"}, {Key: proto.KeyRestoreNote, Value: "a"}}, "n"))
}

func TestParseArgsPlacementFlags(t *testing.T) {
	base := []string{"--protocol=1", "--job-id=7", "--step=batch"}
	for _, tc := range []struct {
		name   string
		args   []string
		cache  string
		policy string
		err    string
	}{
		{"defaults", nil, cache.DefaultPath, OnIncompatibleRequeue, ""},
		{"both set", []string{"--nodeprobe-cache=/var/cache/f.db", "--on-incompatible=fail"}, "/var/cache/f.db", OnIncompatibleFail, ""},
		{"empty cache: live facts", []string{"--nodeprobe-cache="}, "", OnIncompatibleRequeue, ""},
		{"relative cache", []string{"--nodeprobe-cache=f.db"}, "", "", `--nodeprobe-cache="f.db": want an absolute path`},
		{"unknown policy", []string{"--on-incompatible=retry"}, "", "", `--on-incompatible="retry": want requeue or fail`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseArgs(append(append([]string{}, base...), tc.args...), &bytes.Buffer{})
			if tc.err != "" {
				require.ErrorIs(t, err, ErrUsage)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.cache, c.NodeprobeCache)
			assert.Equal(t, tc.policy, c.OnIncompatible)
		})
	}
}
