package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sumA = "ca978112ca1bbdcafac231b39a23dc4da786eff8146d98a5e4b3d5e8f0bc6e48" // sha256("a")

func sample() *Manifest {
	start := time.Date(2025, 3, 4, 5, 6, 7, 8000, time.UTC)
	return &Manifest{
		Meta: Meta{
			JobID: 4242, StepID: "batch", Array: &Array{JobID: 4240, TaskID: 2}, RestartCount: 1,
			User: "alice", Node: "node017", Reason: ReasonPeriodic,
			StartTime: start, EndTime: start.Add(2100 * time.Millisecond),
			DMTCPVersion: "3.0.0", NodeFacts: json.RawMessage(`{"kernel":"6.1.0","cpus":64}`),
		},
		Generation: 7,
		Files: []File{
			{Path: "ckpt_b.dmtcp", Size: 1, SHA256: sumA, Mode: 0o600},
			{Path: "ckpt_a.dmtcp", Size: 1, SHA256: sumA, Mode: 0o600},
			{Path: "ckpt_a_files/script.sh", Size: 1, SHA256: sumA, Mode: 0o700},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	m := sample()
	data, err := Marshal(m)
	require.NoError(t, err)
	assert.Contains(t, string(data), `"format": "slurm-dmtcp/manifest"`)
	assert.Contains(t, string(data), `"version": 1`)
	assert.Contains(t, string(data), `"duration_seconds": 2.1`)
	assert.Contains(t, string(data), `"mode": "0700"`)

	got, err := Parse(data)
	require.NoError(t, err)
	assert.Equal(t, m.JobID, got.JobID)
	assert.Equal(t, *m.Array, *got.Array)
	assert.True(t, m.StartTime.Equal(got.StartTime))
	assert.True(t, m.EndTime.Equal(got.EndTime))
	assert.Equal(t, 2100*time.Millisecond, got.Duration())
	assert.JSONEq(t, string(m.NodeFacts), string(got.NodeFacts))
	require.Len(t, got.Files, 3)
	assert.Equal(t, "ckpt_a.dmtcp", got.Files[0].Path, "files are sorted")
	assert.Equal(t, "ckpt_a_files/script.sh", got.Files[1].Path)
	assert.Equal(t, int64(3), got.TotalSize())
	assert.Equal(t, "ckpt_b.dmtcp", m.Files[0].Path, "Marshal does not reorder the caller's slice")

	again, err := Marshal(got)
	require.NoError(t, err)
	assert.Equal(t, string(data), string(again))
}

func TestRoundTripWithoutOptionalFields(t *testing.T) {
	m := sample()
	m.Array, m.NodeFacts = nil, nil
	data, err := Marshal(m)
	require.NoError(t, err)
	assert.NotContains(t, string(data), "array")
	assert.NotContains(t, string(data), "node_facts")
	got, err := Parse(data)
	require.NoError(t, err)
	assert.Nil(t, got.Array)
	assert.Nil(t, got.NodeFacts)
}

// mutate marshals sample(), decodes it into a generic map, applies f and
// re-encodes it.
func mutate(t *testing.T, f func(map[string]any)) []byte {
	t.Helper()
	data, err := Marshal(sample())
	require.NoError(t, err)
	var obj map[string]any
	require.NoError(t, json.Unmarshal(data, &obj))
	f(obj)
	out, err := json.Marshal(obj)
	require.NoError(t, err)
	return out
}

func file0(o map[string]any) map[string]any { return o["files"].([]any)[0].(map[string]any) }

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name   string
		data   func(t *testing.T) []byte
		errHas string
		unsupp bool
	}{
		{"not json", func(*testing.T) []byte { return []byte("hello") }, "not a JSON object", false},
		{"foreign format", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { o["format"] = "other/thing" })
		}, `format "other/thing"`, true},
		{"missing format", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { delete(o, "format") })
		}, `missing field "format"`, false},
		{"newer version", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { o["version"] = 3; o["new_field"] = true })
		}, "version 3 is newer than the newest supported version 2", true},
		{"ranks in version 1", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) {
				o["ranks"] = []any{map[string]any{"rank": 0, "node": "n1", "images": []string{"ckpt_a.dmtcp"}}}
			})
		}, `unknown field "ranks" (new in version 2)`, false},
		{"version zero", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { o["version"] = 0 })
		}, "version 0", false},
		{"version string", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { o["version"] = "1" })
		}, "not an integer", false},
		{"unknown field", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { o["colour"] = "blue" })
		}, `unknown field "colour"`, false},
		{"missing fields", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { delete(o, "node"); delete(o, "job_id") })
		}, "missing required field(s): job_id, node", false},
		{"missing file field", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { delete(file0(o), "sha256") })
		}, "files[0]: missing required field(s): sha256", false},
		{"empty user", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { o["user"] = "" })
		}, "missing or empty required field(s): user", false},
		{"no files", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { o["files"] = []any{} })
		}, "files", false},
		{"bad reason", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { o["reason"] = "boredom" })
		}, `reason "boredom"`, false},
		{"generation zero", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { o["generation"] = 0 })
		}, "generation 0", false},
		{"end before start", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { o["end_time"] = "2020-01-01T00:00:00Z" })
		}, "before start_time", false},
		{"duration mismatch", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { o["duration_seconds"] = 99 })
		}, "duration_seconds 99", false},
		{"node_facts not object", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { o["node_facts"] = []int{1} })
		}, "node_facts", false},
		{"absolute path", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { file0(o)["path"] = "/etc/passwd" })
		}, "clean path relative", false},
		{"escaping path", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { file0(o)["path"] = "../x" })
		}, "clean path relative", false},
		{"manifest lists itself", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { file0(o)["path"] = FileName })
		}, "cannot list itself", false},
		{"duplicate path", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { o["files"].([]any)[1].(map[string]any)["path"] = "ckpt_a.dmtcp" })
		}, "duplicate path", false},
		{"unsorted", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { fs := o["files"].([]any); fs[0], fs[2] = fs[2], fs[0] })
		}, "sorted", false},
		{"bad sha", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { file0(o)["sha256"] = strings.ToUpper(sumA) })
		}, "64 lower-case hex", false},
		{"bad mode", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { file0(o)["mode"] = "4755" })
		}, `mode "4755"`, false},
		{"negative size", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { file0(o)["size"] = -1 })
		}, "negative size", false},
		{"file and folder", func(t *testing.T) []byte {
			return mutate(t, func(o map[string]any) { file0(o)["path"] = "ckpt_a_files" })
		}, "also a folder", false},
		{"trailing data", func(t *testing.T) []byte {
			data, err := Marshal(sample())
			require.NoError(t, err)
			return append(data, []byte("{}")...)
		}, "after top-level value", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.data(t))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.errHas)
			assert.Equal(t, tc.unsupp, errors.Is(err, ErrUnsupported), "errors.Is ErrUnsupported")
		})
	}
}

func TestMarshalValidates(t *testing.T) {
	m := sample()
	m.Node = ""
	_, err := Marshal(m)
	require.ErrorContains(t, err, "node")
	_, err = Marshal(nil)
	require.Error(t, err)
}

// writeGeneration creates a generation folder with the given files and a
// manifest describing them.
func writeGeneration(t *testing.T, gen int, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	m := sample()
	m.Generation = gen
	m.Files = nil
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o700))
		require.NoError(t, os.WriteFile(full, []byte(content), 0o600))
		size, sum, err := HashFile(full)
		require.NoError(t, err)
		m.Files = append(m.Files, File{Path: p, Size: size, SHA256: sum, Mode: 0o600})
	}
	data, err := Marshal(m)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), data, 0o600))
	return dir
}

func TestVerify(t *testing.T) {
	files := map[string]string{
		"ckpt_a.dmtcp":           strings.Repeat("image-a ", 1000),
		"ckpt_b.dmtcp":           strings.Repeat("image-b ", 1000),
		"ckpt_b_files/script.sh": "#!/bin/sh\necho hi\n",
	}
	tests := []struct {
		name    string
		damage  func(t *testing.T, dir string)
		problem Problem
		errHas  string
	}{
		{"intact", func(*testing.T, string) {}, "", ""},
		{"truncated", func(t *testing.T, dir string) {
			require.NoError(t, os.Truncate(filepath.Join(dir, "ckpt_a.dmtcp"), 100))
		}, ProblemSize, "generation 7: ckpt_a.dmtcp: size mismatch (manifest 8000 bytes, on disk 100 bytes: truncated by 7900 bytes)"},
		{"extra bytes", func(t *testing.T, dir string) {
			f, err := os.OpenFile(filepath.Join(dir, "ckpt_b.dmtcp"), os.O_APPEND|os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = f.WriteString("xyz")
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}, ProblemSize, "generation 7: ckpt_b.dmtcp: size mismatch (manifest 8000 bytes, on disk 8003 bytes: 3 extra bytes)"},
		{"bit flip", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "ckpt_a.dmtcp")
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			data[4321] ^= 0x10
			require.NoError(t, os.WriteFile(p, data, 0o600))
		}, ProblemSHA256, "generation 7: ckpt_a.dmtcp: sha256 mismatch"},
		{"missing file", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "ckpt_b_files/script.sh")))
		}, ProblemMissing, "generation 7: ckpt_b_files/script.sh: missing"},
		{"replaced by symlink", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "ckpt_a.dmtcp")
			require.NoError(t, os.Rename(p, p+".old"))
			require.NoError(t, os.Symlink("ckpt_a.dmtcp.old", p))
		}, ProblemNotFile, "generation 7: ckpt_a.dmtcp: not a file"},
		{"mode changed", func(t *testing.T, dir string) {
			require.NoError(t, os.Chmod(filepath.Join(dir, "ckpt_a.dmtcp"), 0o644))
		}, ProblemMode, "generation 7: ckpt_a.dmtcp: mode mismatch (manifest 0600, on disk 0644)"},
		{"unlisted file", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "ckpt_b_files", "stray"), nil, 0o600))
		}, ProblemExtra, "generation 7: ckpt_b_files/stray: unlisted file"},
		{"missing manifest", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, FileName)))
		}, ProblemManifest, "MANIFEST.json: manifest"},
		{"corrupt manifest", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), []byte(`{"format":"slurm-dmtcp/manifest","version":1,"job_id":`), 0o600))
		}, ProblemManifest, "MANIFEST.json: manifest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeGeneration(t, 7, files)
			tc.damage(t, dir)
			m, err := Verify(dir)
			if tc.problem == "" {
				require.NoError(t, err)
				assert.Equal(t, 7, m.Generation)
				assert.Len(t, m.Files, 3)
				return
			}
			require.Error(t, err)
			var ve *VerifyError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tc.problem, ve.Problem)
			assert.Contains(t, err.Error(), tc.errHas)
		})
	}
}

func TestReasonValid(t *testing.T) {
	for _, r := range []Reason{ReasonPeriodic, ReasonSignal, ReasonRequest, ReasonTimeLimit} {
		assert.True(t, r.Valid(), r)
	}
	assert.False(t, Reason("other").Valid())
}

func rankSample() *Manifest {
	m := sample()
	m.StepID = "3"
	m.Files = []File{
		{Path: "dmtcp_restart_script_x.sh", Size: 1, SHA256: sumA, Mode: 0o700},
		{Path: "rank-0/ckpt_a_1.dmtcp", Size: 1, SHA256: sumA, Mode: 0o600},
		{Path: "rank-1/ckpt_a_2.dmtcp", Size: 1, SHA256: sumA, Mode: 0o600},
		{Path: "rank-1/ckpt_sh_3.dmtcp", Size: 1, SHA256: sumA, Mode: 0o600},
	}
	m.Ranks = []Rank{
		{Rank: 0, Node: "n1", Images: []string{"rank-0/ckpt_a_1.dmtcp"}},
		{Rank: 1, Node: "n2", Images: []string{"rank-1/ckpt_a_2.dmtcp", "rank-1/ckpt_sh_3.dmtcp"}},
	}
	return m
}

func TestRanksRoundTrip(t *testing.T) {
	data, err := Marshal(rankSample())
	require.NoError(t, err)
	assert.Contains(t, string(data), `"version": 2`, "ranks need version 2")
	got, err := Parse(data)
	require.NoError(t, err)
	assert.Equal(t, rankSample().Ranks, got.Ranks)

	one, err := Marshal(sample())
	require.NoError(t, err)
	assert.Contains(t, string(one), `"version": 1`, "without ranks the manifest stays version 1")
	assert.NotContains(t, string(one), `"ranks"`)
}

func TestRanksRejected(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ranks []Rank
		want  string
	}{
		{"negative rank", []Rank{{Rank: -1, Node: "n1", Images: []string{"rank-0/ckpt_a_1.dmtcp"}}}, "must be >= 0"},
		{"rank twice", []Rank{{Rank: 0, Node: "n1", Images: []string{"rank-0/ckpt_a_1.dmtcp"}},
			{Rank: 0, Node: "n2", Images: []string{"rank-0/ckpt_a_1.dmtcp"}}}, "listed twice"},
		{"no node", []Rank{{Rank: 0, Images: []string{"rank-0/ckpt_a_1.dmtcp"}}}, "missing node"},
		{"no image", []Rank{{Rank: 0, Node: "n1"}}, "no image"},
		{"image of another rank", []Rank{{Rank: 0, Node: "n1", Images: []string{"rank-1/ckpt_a_2.dmtcp"}}}, "is not in rank-0/"},
		{"image not a file", []Rank{{Rank: 0, Node: "n1", Images: []string{"rank-0/ckpt_z.dmtcp"}}}, "not among the files"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := rankSample()
			m.Ranks = tc.ranks
			_, err := Marshal(m)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// Check finds what needs no hashing (a missing or cut file) and passes an image whose bytes
// changed but not its size; Verify finds that too, in whichever file of many it is.
func TestCheckAndVerifyOfManyFiles(t *testing.T) {
	files := map[string]string{}
	for i := 0; i < 9; i++ {
		files[fmt.Sprintf("ckpt_p%d.dmtcp", i)] = strings.Repeat(fmt.Sprintf("image %d ", i), 2000)
	}
	dir := writeGeneration(t, 3, files)
	_, err := Check(dir)
	require.NoError(t, err)
	_, err = Verify(dir)
	require.NoError(t, err)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "ckpt_p6.dmtcp"), []byte(strings.Repeat("IMAGE 6 ", 2000)), 0o600))
	_, err = Check(dir)
	assert.NoError(t, err, "same size: nothing Check can see")
	_, err = Verify(dir)
	var ve *VerifyError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, ProblemSHA256, ve.Problem)
	assert.Equal(t, "ckpt_p6.dmtcp", ve.Path)

	require.NoError(t, os.Truncate(filepath.Join(dir, "ckpt_p2.dmtcp"), 10))
	_, err = Check(dir)
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, ProblemSize, ve.Problem)
}
