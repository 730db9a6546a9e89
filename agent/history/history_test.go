package history

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/proto/manifest"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// writeGen makes a generation folder with one image and its manifest.
func writeGen(t *testing.T, stepDir string, n int, reason manifest.Reason, end time.Time, size int) {
	t.Helper()
	dir := filepath.Join(stepDir, fmt.Sprintf("gen-%06d", n))
	require.NoError(t, os.MkdirAll(dir, 0o700))
	data := strings.Repeat("x", size)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ckpt_a.dmtcp"), []byte(data), 0o600))
	_, sum, err := manifest.HashFile(filepath.Join(dir, "ckpt_a.dmtcp"))
	require.NoError(t, err)
	m := &manifest.Manifest{Meta: manifest.Meta{JobID: 42, StepID: "batch", User: "u", Node: "n1", Reason: reason,
		StartTime: end.Add(-time.Second), EndTime: end, DMTCPVersion: "5.0"}, Generation: n,
		Files: []manifest.File{{Path: "ckpt_a.dmtcp", Size: int64(size), SHA256: sum, Mode: 0o600}}}
	b, err := manifest.Marshal(m)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "MANIFEST.json"), b, 0o600))
}

func TestAppendRead(t *testing.T) {
	dir := t.TempDir()
	evs := []Event{
		{Time: t0, Kind: KindCheckpoint, Generation: 1, Reason: "periodic", Bytes: 100, DurationS: 0.4},
		{Time: t0.Add(time.Minute), Kind: KindRequeue, Why: WhyContinue, Generation: 1, Detail: "run 1 done"},
		{Time: t0.Add(2 * time.Minute), Kind: KindRestore, Restart: 1, Generation: 1, Attempt: 1},
	}
	for _, e := range evs {
		require.NoError(t, Append(dir, e))
	}
	fi, err := os.Stat(filepath.Join(dir, FileName))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	got, bad, err := Read(dir)
	require.NoError(t, err)
	assert.Zero(t, bad)
	require.Len(t, got, 3)
	for i := range evs {
		assert.True(t, evs[i].Time.Equal(got[i].Time))
		got[i].Time = evs[i].Time
	}
	assert.Equal(t, evs, got)
}

func TestReadTolerates(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		events     int
		bad        int
	}{
		{"no file", "", 0, 0},
		{"cut last line", `{"time":"2026-12-07T12:00:00Z","event":"checkpoint","restart":0,"generation":1}` + "\n" + `{"time":"2026-12-07T12:0`, 1, 1},
		{"unknown fields of a later release", `{"time":"2026-12-07T12:00:00Z","event":"checkpoint","restart":0,"generation":1,"gpu":"x"}` + "\n", 1, 0},
		{"blank lines and lines without kind", "\n\n" + `{"time":"2026-12-07T12:00:00Z"}` + "\n", 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.body != "" {
				require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), []byte(tc.body), 0o600))
			}
			evs, bad, err := Read(dir)
			require.NoError(t, err)
			assert.Len(t, evs, tc.events)
			assert.Equal(t, tc.bad, bad)
		})
	}
}

func TestAppendRefusesLink(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(dir, FileName)))
	assert.Error(t, Append(dir, Event{Time: t0, Kind: KindCheckpoint}))
	_, err := os.Lstat(filepath.Join(dir, "elsewhere"))
	assert.True(t, os.IsNotExist(err), "nothing written through the link")
}

func TestAppendBoundsLine(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, Append(dir, Event{Time: t0, Kind: KindRequeue, Detail: strings.Repeat("d", 3*maxLine)}))
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	require.NoError(t, err)
	assert.LessOrEqual(t, len(b), maxLine)
	evs, _, err := Read(dir)
	require.NoError(t, err)
	assert.Len(t, evs, 1)
}

// The timeline merges the file with the generations on disk: one the file names is not
// shown twice, one it does not (older release, crash before the append) comes from its
// manifest, and a damaged manifest is listed.
func TestTimelineMerge(t *testing.T) {
	dir := t.TempDir()
	writeGen(t, dir, 1, manifest.ReasonPeriodic, t0, 10) // older release: no history line
	writeGen(t, dir, 2, manifest.ReasonSignal, t0.Add(2*time.Minute), 20)
	require.NoError(t, Append(dir, Event{Time: t0.Add(2 * time.Minute), Kind: KindCheckpoint, Generation: 2, Reason: "signal", Bytes: 20}))
	require.NoError(t, Append(dir, Event{Time: t0.Add(3 * time.Minute), Kind: KindRestore, Restart: 1, Generation: 2, Attempt: 1}))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "gen-000003"), 0o700)) // no manifest
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".staging-4-1"), 0o700))

	tl, err := ReadTimeline(dir, "batch")
	require.NoError(t, err)
	require.Len(t, tl.Events, 3)
	assert.Equal(t, 1, tl.Events[0].Generation)
	assert.True(t, tl.Events[0].FromManifest)
	assert.Equal(t, "periodic", tl.Events[0].Reason)
	assert.Equal(t, int64(10), tl.Events[0].Bytes)
	assert.Equal(t, 2, tl.Events[1].Generation)
	assert.False(t, tl.Events[1].FromManifest)
	assert.Equal(t, KindRestore, tl.Events[2].Kind)
	assert.Equal(t, []string{"gen-000003"}, tl.Damaged)
	for _, e := range tl.Events {
		assert.Equal(t, "batch", e.Step)
	}
}

func TestJobTimelines(t *testing.T) {
	job := t.TempDir()
	for _, s := range []string{"step-10", "batch", "step-2", "notastep"} {
		require.NoError(t, os.MkdirAll(filepath.Join(job, s), 0o700))
	}
	require.NoError(t, Append(filepath.Join(job, "step-2"), Event{Time: t0, Kind: KindCheckpoint, Generation: 1}))
	tls, err := JobTimelines(job)
	require.NoError(t, err)
	var names []string
	for _, tl := range tls {
		names = append(names, tl.Step)
	}
	assert.Equal(t, []string{"batch", "step-2", "step-10"}, names)
	assert.Len(t, tls[1].Events, 1)
	_, err = JobTimelines(filepath.Join(job, "missing"))
	assert.Error(t, err)
}
