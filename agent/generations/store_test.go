package generations

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/proto/manifest"
)

func meta() manifest.Meta {
	start := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	return manifest.Meta{
		JobID: 4242, StepID: "batch", User: "alice", Node: "node017",
		Reason: manifest.ReasonPeriodic, StartTime: start, EndTime: start.Add(2 * time.Second),
		DMTCPVersion: "3.0.0",
	}
}

func openStore(t *testing.T, keep int) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "job-4242"), Options{Keep: keep})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// writeCheckpoint writes what DMTCP leaves in a --ckptdir for a script job.
func writeCheckpoint(t testing.TB, dir, tag string, size int) {
	t.Helper()
	img := make([]byte, size)
	_, _ = rand.Read(img)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ckpt_bash_"+tag+".dmtcp"), img, 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "ckpt_bash_"+tag+"_files"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ckpt_bash_"+tag+"_files", "job.sh"), []byte("#!/bin/sh\nsleep 100\n"), 0o700))
	script := "dmtcp_restart_script_" + tag + ".sh"
	require.NoError(t, os.WriteFile(filepath.Join(dir, script), []byte("#!/bin/sh\n"), 0o700))
	_ = os.Remove(filepath.Join(dir, restartLink))
	require.NoError(t, os.Symlink(script, filepath.Join(dir, restartLink)))
}

// commit writes a checkpoint into .current and commits it.
func commit(t *testing.T, s *Store, size int) Committed {
	t.Helper()
	p, err := s.Begin()
	require.NoError(t, err)
	writeCheckpoint(t, s.CurrentDir(), fmt.Sprintf("%d", p.Number()), size)
	c, err := p.CommitFrom(s.CurrentDir(), meta())
	require.NoError(t, err)
	return c
}

func numbers(t *testing.T, s *Store) []int {
	t.Helper()
	gens, err := s.List()
	require.NoError(t, err)
	var ns []int
	for _, g := range gens {
		ns = append(ns, g.Number)
	}
	return ns
}

func rootEntries(t *testing.T, s *Store) []string {
	t.Helper()
	entries, err := os.ReadDir(s.Root())
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestOpenLayout(t *testing.T) {
	s := openStore(t, 0)
	assert.Equal(t, DefaultKeep, s.Keep())
	fi, err := os.Lstat(s.Root())
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	fi, err = os.Lstat(s.CurrentDir())
	require.NoError(t, err)
	assert.True(t, fi.IsDir())
	assert.ElementsMatch(t, []string{".current", ".lock"}, rootEntries(t, s))
}

func TestRoundTrip(t *testing.T) {
	s := openStore(t, 2)
	p, err := s.Begin()
	require.NoError(t, err)
	assert.Equal(t, 1, p.Number())
	assert.True(t, strings.HasPrefix(filepath.Base(p.Dir()), ".staging-1-"), p.Dir())
	fi, err := os.Stat(p.Dir())
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())

	cur := s.CurrentDir()
	writeCheckpoint(t, cur, "4b3c", 100_000)
	require.NoError(t, os.WriteFile(filepath.Join(cur, "unrelated.log"), []byte("x"), 0o600))
	m := meta()
	m.NodeFacts = []byte(`{"kernel":"6.1"}`)
	c, err := p.CommitFrom(cur, m)
	require.NoError(t, err)

	assert.Equal(t, 1, c.Generation.Number)
	assert.Equal(t, filepath.Join(s.Root(), "gen-000001"), c.Generation.Path)
	assert.Equal(t, 3, c.Files)
	assert.Equal(t, int64(100_000+20+10), c.Bytes)
	assert.Positive(t, c.Duration)
	assert.Regexp(t, `^generation 1: 98 KiB in \d+\.\d s \(\d+ MiB/s\)$`, c.String())
	assert.Empty(t, c.Pruned)
	require.NoError(t, c.PruneErr)

	// .current keeps only what is not DMTCP's; staging is gone.
	left, err := os.ReadDir(cur)
	require.NoError(t, err)
	require.Len(t, left, 1)
	assert.Equal(t, "unrelated.log", left[0].Name())
	assert.ElementsMatch(t, []string{".current", ".lock", "gen-000001"}, rootEntries(t, s))

	got, err := manifest.Verify(c.Generation.Path)
	require.NoError(t, err)
	assert.Equal(t, 1, got.Generation)
	assert.Equal(t, uint32(4242), got.JobID)
	assert.JSONEq(t, `{"kernel":"6.1"}`, string(got.NodeFacts))
	var paths []string
	for _, f := range got.Files {
		paths = append(paths, f.Path)
	}
	assert.Equal(t, []string{"ckpt_bash_4b3c.dmtcp", "ckpt_bash_4b3c_files/job.sh", "dmtcp_restart_script_4b3c.sh"}, paths)
	assert.Equal(t, os.FileMode(0o700), got.Files[1].Mode)

	gens, err := s.List()
	require.NoError(t, err)
	require.Len(t, gens, 1)
	assert.Equal(t, c.Bytes, gens[0].Size)
	assert.True(t, m.EndTime.Equal(gens[0].Time))
	assert.Equal(t, manifest.ReasonPeriodic, gens[0].Reason)

	g, skipped, err := s.NewestVerified()
	require.NoError(t, err)
	assert.Empty(t, skipped)
	assert.Equal(t, 1, g.Number)

	p2, err := s.Begin()
	require.NoError(t, err)
	assert.Equal(t, 2, p2.Number())
	require.NoError(t, p2.Abort())
	_, err = p2.Commit(meta())
	require.ErrorContains(t, err, "already committed or aborted")
}

func TestCommitDirectAndZeroEndTime(t *testing.T) {
	s := openStore(t, 2)
	p, err := s.Begin()
	require.NoError(t, err)
	writeCheckpoint(t, p.Dir(), "aa", 10)
	m := meta()
	m.EndTime = time.Time{}
	before := time.Now()
	c, err := p.Commit(m)
	require.NoError(t, err)
	assert.False(t, c.Generation.Time.Before(before))
	_, err = os.Lstat(filepath.Join(c.Generation.Path, restartLink))
	assert.ErrorIs(t, err, os.ErrNotExist, "the restart-script symlink is dropped")
}

func TestCommitFromOtherFilesystem(t *testing.T) {
	s := openStore(t, 2)
	renames := 0
	s.rename = func(oldpath, newpath string) error {
		if strings.HasPrefix(oldpath, s.CurrentDir()) {
			renames++
			return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: syscall.EXDEV}
		}
		return os.Rename(oldpath, newpath)
	}
	c := commit(t, s, 50_000)
	assert.Equal(t, 3, renames, "every entry falls back to copying")
	_, err := c.Generation.Verify()
	require.NoError(t, err)
	left, err := os.ReadDir(s.CurrentDir())
	require.NoError(t, err)
	assert.Empty(t, left, "sources are removed after the copy")
}

func TestVerifyDetectsDamage(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		errHas string
	}{
		{"truncated", func(t *testing.T, dir string) {
			require.NoError(t, os.Truncate(filepath.Join(dir, "ckpt_bash_1.dmtcp"), 10))
		}, "generation 1: ckpt_bash_1.dmtcp: size mismatch (manifest 4096 bytes, on disk 10 bytes: truncated by 4086 bytes)"},
		{"bit flip", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "ckpt_bash_1.dmtcp")
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			data[2000] ^= 1
			require.NoError(t, os.WriteFile(p, data, 0o600))
		}, "generation 1: ckpt_bash_1.dmtcp: sha256 mismatch"},
		{"missing file", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "ckpt_bash_1_files", "job.sh")))
		}, "generation 1: ckpt_bash_1_files/job.sh: missing"},
		{"missing manifest", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, manifest.FileName)))
		}, "generation 1: MANIFEST.json: manifest"},
		{"manifest of another generation", func(t *testing.T, dir string) {
			p := filepath.Join(dir, manifest.FileName)
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			data = []byte(strings.Replace(string(data), `"generation": 1`, `"generation": 9`, 1))
			require.NoError(t, os.WriteFile(p, data, 0o600))
		}, "generation 1: MANIFEST.json: manifest (manifest names generation 9)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, 2)
			c := commit(t, s, 4096)
			tc.damage(t, c.Generation.Path)
			_, err := c.Generation.Verify()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.errHas)
		})
	}
}

func TestPruneKeepsN(t *testing.T) {
	tests := []struct {
		keep    int
		commits int
		want    []int
	}{
		{1, 4, []int{4}},
		{2, 4, []int{3, 4}},
		{3, 4, []int{2, 3, 4}},
		{5, 4, []int{1, 2, 3, 4}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("keep=%d", tc.keep), func(t *testing.T) {
			s := openStore(t, tc.keep)
			var pruned []int
			for i := 0; i < tc.commits; i++ {
				c := commit(t, s, 1000)
				require.NoError(t, c.PruneErr)
				pruned = append(pruned, c.Pruned...)
			}
			assert.Equal(t, tc.want, numbers(t, s))
			assert.Len(t, pruned, tc.commits-len(tc.want))
			for _, name := range rootEntries(t, s) {
				assert.False(t, strings.HasPrefix(name, deletingPrefix), name)
			}
		})
	}
}

func TestPruneSkipsDamagedAndKeepsVerified(t *testing.T) {
	s := openStore(t, 2)
	commit(t, s, 1000)
	c2 := commit(t, s, 1000)
	// Generation 2 rots; a fresh Store has no cached verdicts.
	require.NoError(t, os.Truncate(filepath.Join(c2.Generation.Path, "ckpt_bash_2.dmtcp"), 1))
	require.NoError(t, s.Close())
	s, err := Open(s.Root(), Options{Keep: 2})
	require.NoError(t, err)
	defer s.Close()

	c3 := commit(t, s, 1000)
	assert.Equal(t, []int{2}, c3.Pruned, "the damaged generation goes, the older verified one stays")
	assert.Equal(t, []int{1, 3}, numbers(t, s))
}

func TestNewestVerifiedFallsBack(t *testing.T) {
	truncate := func(n int) func(t *testing.T, s *Store) {
		return func(t *testing.T, s *Store) {
			require.NoError(t, os.Truncate(filepath.Join(s.Root(), GenDirName(n), fmt.Sprintf("ckpt_bash_%d.dmtcp", n)), 3))
		}
	}
	tests := []struct {
		name        string
		damage      []func(t *testing.T, s *Store)
		want        int
		wantSkipped []int
		skippedHas  string
	}{
		{"intact", nil, 3, nil, ""},
		{"newest damaged", []func(*testing.T, *Store){truncate(3)}, 2, []int{3}, "generation 3: ckpt_bash_3.dmtcp: size mismatch"},
		{"two newest damaged", []func(*testing.T, *Store){truncate(3), truncate(2)}, 1, []int{3, 2}, "truncated"},
		{"newest manifest gone", []func(*testing.T, *Store){func(t *testing.T, s *Store) {
			require.NoError(t, os.Remove(filepath.Join(s.Root(), GenDirName(3), manifest.FileName)))
		}}, 2, []int{3}, "generation 3: MANIFEST.json"},
		{"all damaged", []func(*testing.T, *Store){truncate(3), truncate(2), truncate(1)}, 0, []int{3, 2, 1}, "truncated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, 3)
			for i := 0; i < 3; i++ {
				commit(t, s, 1000)
			}
			for _, d := range tc.damage {
				d(t, s)
			}
			g, skipped, err := s.NewestVerified()
			var got []int
			for _, k := range skipped {
				got = append(got, k.Generation.Number)
				assert.Contains(t, k.Err.Error(), tc.skippedHas)
				assert.Contains(t, k.String(), fmt.Sprintf("skipping damaged generation %d: ", k.Generation.Number))
			}
			assert.Equal(t, tc.wantSkipped, got)
			if tc.want == 0 {
				require.ErrorIs(t, err, ErrNoVerified)
				assert.Contains(t, err.Error(), "3 generation(s), 3 damaged")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, g.Number)
		})
	}
}

func TestFailedCommitLeavesPreviousIntact(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, p *Pending)
		meta    func(m *manifest.Meta)
		errHas  string
	}{
		{"missing image", func(t *testing.T, p *Pending) {
			writeCheckpoint(t, p.Dir(), "a", 100)
			p.ExpectImages(2)
		}, nil, "generation 2: commit: check images: expected 2 checkpoint images, found 1: image missing"},
		{"no image", func(t *testing.T, p *Pending) {
			require.NoError(t, os.WriteFile(filepath.Join(p.Dir(), "dmtcp_restart_script_a.sh"), nil, 0o700))
		}, nil, "generation 2: commit: check images: no checkpoint image"},
		{"image still being written", func(t *testing.T, p *Pending) {
			writeCheckpoint(t, p.Dir(), "a", 100)
			require.NoError(t, os.WriteFile(filepath.Join(p.Dir(), "ckpt_bash_b.dmtcp.temp"), nil, 0o600))
		}, nil, "generation 2: commit: scan staging folder: ckpt_bash_b.dmtcp.temp: incomplete file"},
		{"foreign symlink", func(t *testing.T, p *Pending) {
			writeCheckpoint(t, p.Dir(), "a", 100)
			require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(p.Dir(), "ckpt_bash_a_files", "passwd")))
		}, nil, "generation 2: commit: scan staging folder: ckpt_bash_a_files/passwd: unexpected symlink"},
		{"invalid meta", func(t *testing.T, p *Pending) {
			writeCheckpoint(t, p.Dir(), "a", 100)
		}, func(m *manifest.Meta) { m.User = "" }, "generation 2: commit: build manifest: manifest: missing or empty required field(s): user"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, 1)
			c1 := commit(t, s, 1000)
			p, err := s.Begin()
			require.NoError(t, err)
			tc.prepare(t, p)
			m := meta()
			if tc.meta != nil {
				tc.meta(&m)
			}
			_, err = p.Commit(m)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.errHas)

			assert.ElementsMatch(t, []string{".current", ".lock", "gen-000001"}, rootEntries(t, s), "staging removed")
			_, err = c1.Generation.Verify()
			require.NoError(t, err, "previous generation intact")
			g, _, err := s.NewestVerified()
			require.NoError(t, err)
			assert.Equal(t, 1, g.Number)

			p2, err := s.Begin()
			require.NoError(t, err)
			assert.Equal(t, 2, p2.Number(), "the failed number is reused: it never became a generation")
			require.NoError(t, p2.Abort())
		})
	}
}

func TestMoveFromRefusesUnfinishedCheckpoint(t *testing.T) {
	s := openStore(t, 1)
	cur := s.CurrentDir()
	writeCheckpoint(t, cur, "a", 100)
	require.NoError(t, os.WriteFile(filepath.Join(cur, "ckpt_bash_b.dmtcp.temp"), nil, 0o600))
	p, err := s.Begin()
	require.NoError(t, err)
	_, err = p.CommitFrom(cur, meta())
	require.ErrorContains(t, err, "ckpt_bash_b.dmtcp.temp is still being written")
	_, err = os.Stat(filepath.Join(cur, "ckpt_bash_a.dmtcp"))
	require.NoError(t, err, "nothing was moved")
	assert.ElementsMatch(t, []string{".current", ".lock"}, rootEntries(t, s))

	empty := t.TempDir()
	p, err = s.Begin()
	require.NoError(t, err)
	_, err = p.CommitFrom(empty, meta())
	require.ErrorContains(t, err, "no checkpoint files")
}

func TestStaleStagingCleanup(t *testing.T) {
	root := filepath.Join(t.TempDir(), "job")
	s, err := Open(root, Options{})
	require.NoError(t, err)
	commit(t, s, 100)
	p, err := s.Begin() // the agent is killed with this checkpoint half written
	require.NoError(t, err)
	writeCheckpoint(t, p.Dir(), "x", 100)
	require.NoError(t, os.MkdirAll(filepath.Join(root, ".staging-9-123"), 0o700))
	require.NoError(t, os.MkdirAll(filepath.Join(root, ".deleting-1-456", "gen-000001"), 0o700))
	writeCheckpoint(t, s.CurrentDir(), "y", 100)
	require.NoError(t, s.Close())

	s, err = Open(root, Options{})
	require.NoError(t, err)
	defer s.Close()
	assert.ElementsMatch(t, []string{filepath.Base(p.Dir()), ".staging-9-123", ".deleting-1-456"}, s.StaleRemoved())
	assert.ElementsMatch(t, []string{".current", ".lock", "gen-000001"}, rootEntries(t, s))
	left, err := os.ReadDir(s.CurrentDir())
	require.NoError(t, err)
	assert.NotEmpty(t, left, ".current is left for the caller")
	p, err = s.Begin()
	require.NoError(t, err)
	assert.Equal(t, 2, p.Number(), "staging folders never count as generations")
}

func TestOpenRefuses(t *testing.T) {
	t.Run("symlinked root", func(t *testing.T) {
		dir := t.TempDir()
		real := filepath.Join(dir, "real")
		require.NoError(t, os.Mkdir(real, 0o700))
		link := filepath.Join(dir, "link")
		require.NoError(t, os.Symlink(real, link))
		_, err := Open(link, Options{})
		require.ErrorContains(t, err, "is a symlink; refusing")
		_, err = os.Stat(filepath.Join(real, lockName))
		assert.ErrorIs(t, err, os.ErrNotExist, "nothing written through the link")
	})
	t.Run("not a folder", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "file")
		require.NoError(t, os.WriteFile(p, nil, 0o600))
		_, err := Open(p, Options{})
		require.ErrorContains(t, err, "is not a folder")
	})
	t.Run("symlinked .current", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "job")
		require.NoError(t, os.Mkdir(root, 0o700))
		require.NoError(t, os.Symlink(t.TempDir(), filepath.Join(root, CurrentDirName)))
		_, err := Open(root, Options{})
		require.ErrorContains(t, err, ".current is a symlink")
	})
	t.Run("bad keep", func(t *testing.T) {
		_, err := Open(t.TempDir(), Options{Keep: -1})
		require.ErrorContains(t, err, "keep -1")
	})
	t.Run("other owner", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("skipping: needs root to chown a folder to another uid")
		}
		root := filepath.Join(t.TempDir(), "job")
		require.NoError(t, os.Mkdir(root, 0o700))
		require.NoError(t, os.Chown(root, 4321, 4321))
		_, err := Open(root, Options{})
		require.ErrorContains(t, err, "is owned by uid 4321, not by the current uid 0")
	})
	t.Run("locked", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "job")
		s, err := Open(root, Options{})
		require.NoError(t, err)
		_, err = Open(root, Options{})
		require.ErrorIs(t, err, ErrLocked)
		require.NoError(t, s.Close())
		s, err = Open(root, Options{})
		require.NoError(t, err)
		require.NoError(t, s.Close())
	})
	t.Run("loose mode tightened", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "job")
		require.NoError(t, os.Mkdir(root, 0o700))
		require.NoError(t, os.Chmod(root, 0o755))
		s, err := Open(root, Options{})
		require.NoError(t, err)
		defer s.Close()
		fi, err := os.Stat(root)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	})
}

func TestGenDirName(t *testing.T) {
	assert.Equal(t, "gen-000007", GenDirName(7))
	for name, want := range map[string]int{"gen-000007": 7, "gen-1234567": 1234567, "gen-0000007": 0, "gen-000000": 0, "gen-7": 0, "gen-00000x": 0, "xgen-000001": 0} {
		n, ok := parseGenDirName(name)
		assert.Equal(t, want != 0, ok, name)
		assert.Equal(t, want, n, name)
	}
}

func TestCommittedString(t *testing.T) {
	c := Committed{Generation: Generation{Number: 3}, Bytes: 512 << 20, Duration: 2100 * time.Millisecond}
	assert.Equal(t, "generation 3: 512 MiB in 2.1 s (244 MiB/s)", c.String())
}

// TestENOSPC fills a small tmpfs during a commit and checks that the
// previous generation survives.
func TestENOSPC(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping ENOSPC test: needs root to mount a 1 MiB tmpfs")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m,mode=0700"); err != nil {
		t.Skipf("skipping ENOSPC test: mount -t tmpfs -o size=1m failed: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(mnt, 0) })

	s, err := Open(filepath.Join(mnt, "job"), Options{Keep: 1})
	require.NoError(t, err)
	defer s.Close()
	c1 := commit(t, s, 100_000)

	p, err := s.Begin()
	require.NoError(t, err)
	// DMTCP fills the disk: the image takes every free block, so the
	// manifest cannot be written.
	f, err := os.OpenFile(filepath.Join(p.Dir(), "ckpt_bash_2.dmtcp"), os.O_WRONLY|os.O_CREATE, 0o600)
	require.NoError(t, err)
	buf := make([]byte, 4096)
	for {
		if _, err = f.Write(buf); err != nil {
			break
		}
	}
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.NoError(t, f.Close())

	_, err = p.Commit(meta())
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.ENOSPC)
	assert.Contains(t, err.Error(), "generation 2: commit: write manifest")
	assert.Contains(t, err.Error(), "no space left on device")

	assert.ElementsMatch(t, []string{".current", ".lock", "gen-000001"}, rootEntries(t, s))
	g, skipped, err := s.NewestVerified()
	require.NoError(t, err)
	assert.Empty(t, skipped)
	assert.Equal(t, c1.Generation.Number, g.Number)

	// With the space back, the next checkpoint commits and prunes 1.
	c3 := commit(t, s, 100_000)
	assert.Equal(t, 2, c3.Generation.Number)
	assert.Equal(t, []int{1}, c3.Pruned)
}

func TestConcurrentBegin(t *testing.T) {
	s := openStore(t, 2)
	p1, err := s.Begin()
	require.NoError(t, err)
	p2, err := s.Begin()
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2}, []int{p1.Number(), p2.Number()})
	writeCheckpoint(t, p2.Dir(), "b", 10)
	writeCheckpoint(t, p1.Dir(), "a", 10)
	errs := make(chan error, 2)
	for _, p := range []*Pending{p2, p1} {
		go func() { _, err := p.Commit(meta()); errs <- err }()
	}
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	_, err = s.Begin()
	require.NoError(t, err)
	assert.NotEmpty(t, numbers(t, s))
	assert.Contains(t, numbers(t, s), 2)
}

// A step across nodes: each rank's images in rank-<R>/, the restart script at the top.
func TestCommitRankFolders(t *testing.T) {
	s := openStore(t, 2)
	cur := s.CurrentDir()
	for _, f := range []string{"rank-0/ckpt_p_1.dmtcp", "rank-1/ckpt_p_2.dmtcp", "rank-1/ckpt_sh_3.dmtcp", "rank-1/ckpt_sh_3_files/x.sh"} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(cur, f)), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(cur, f), []byte(f), 0o600))
	}
	require.NoError(t, os.WriteFile(filepath.Join(cur, "dmtcp_restart_script_x.sh"), []byte("#!/bin/sh\n"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(cur, "rank-x"), nil, 0o600)) // not a rank folder: stays

	p, err := s.Begin()
	require.NoError(t, err)
	p.ExpectImages(3)
	m := meta()
	m.StepID = "0"
	m.Ranks = []manifest.Rank{{Rank: 0, Node: "n1", Images: []string{"rank-0/ckpt_p_1.dmtcp"}},
		{Rank: 1, Node: "n2", Images: []string{"rank-1/ckpt_p_2.dmtcp", "rank-1/ckpt_sh_3.dmtcp"}}}
	c, err := p.CommitFrom(cur, m)
	require.NoError(t, err)
	got, err := c.Generation.Verify()
	require.NoError(t, err)
	assert.Equal(t, m.Ranks, got.Ranks)
	assert.FileExists(t, filepath.Join(c.Generation.Path, "rank-1", "ckpt_sh_3_files", "x.sh"))
	assert.FileExists(t, filepath.Join(cur, "rank-x"))
	assert.NoDirExists(t, filepath.Join(cur, "rank-0"))

	// A rank still writing its image: nothing moves.
	require.NoError(t, os.MkdirAll(filepath.Join(cur, "rank-0"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(cur, "rank-0", "ckpt_p_1.dmtcp"), nil, 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(cur, "rank-1"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(cur, "rank-1", "ckpt_p_2.dmtcp.temp"), nil, 0o600))
	p, err = s.Begin()
	require.NoError(t, err)
	_, err = p.CommitFrom(cur, meta())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "still being written")
	assert.FileExists(t, filepath.Join(cur, "rank-0", "ckpt_p_1.dmtcp"))
}

func TestIsImagePath(t *testing.T) {
	for p, want := range map[string]bool{
		"ckpt_a.dmtcp": true, "rank-0/ckpt_a.dmtcp": true, "rank-12/ckpt_a.dmtcp": true,
		"rank-01/ckpt_a.dmtcp": false, "rank-/ckpt_a.dmtcp": false, "x/ckpt_a.dmtcp": false,
		"rank-1/ckpt_a_files/ckpt_b.dmtcp": false, "ckpt_a_files/x": false, "dmtcp_restart_script.sh": false,
	} {
		assert.Equal(t, want, IsImagePath(p), p)
	}
}
