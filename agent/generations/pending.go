package generations

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/atomicfile"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto/manifest"
)

// restartLink is the convenience symlink DMTCP points at the newest
// dmtcp_restart_script_<id>.sh. Generations hold regular files only, so it
// is dropped.
const restartLink = "dmtcp_restart_script.sh"

// Pending is a generation being assembled in its staging folder. Finish it
// with exactly one of Commit, CommitFrom or Abort.
type Pending struct {
	s      *Store
	number int
	dir    string
	expect int
	done   bool
	moved  time.Duration
}

// Number is the generation number Commit will create.
func (p *Pending) Number() int { return p.number }

// Dir is the staging folder, <root>/.staging-N-*.
func (p *Pending) Dir() string { return p.dir }

// ExpectImages makes Commit fail unless the staging folder holds exactly n
// ckpt_*.dmtcp images (the number of processes DMTCP checkpointed). With
// n == 0 (the default) at least one image is required.
func (p *Pending) ExpectImages(n int) { p.expect = n }

// Abort removes the staging folder. It is a no-op after Commit.
func (p *Pending) Abort() error {
	if p.done {
		return nil
	}
	p.done = true
	defer p.s.release(p.number)
	if err := os.RemoveAll(p.dir); err != nil {
		return fmt.Errorf("generation %d: abort: remove %s: %w", p.number, p.dir, err)
	}
	return nil
}

// isDMTCPFile reports whether a top-level entry of a --ckptdir belongs to a
// checkpoint: ckpt_*.dmtcp, ckpt_*_files/, dmtcp_restart_script*.sh, and the
// rank-<R>/ folders of a step across nodes (one per task rank).
func isDMTCPFile(name string, isDir bool) bool {
	if isDir {
		return strings.HasPrefix(name, "ckpt_") && strings.HasSuffix(name, "_files") || isRankDir(name)
	}
	return strings.HasPrefix(name, "ckpt_") && strings.HasSuffix(name, ".dmtcp") ||
		strings.HasPrefix(name, "dmtcp_restart_script") && strings.HasSuffix(name, ".sh")
}

func isImage(name string) bool {
	return strings.HasPrefix(name, "ckpt_") && strings.HasSuffix(name, ".dmtcp")
}

// isRankDir reports whether name is a rank-<R> folder (R a decimal number without
// leading zeros).
func isRankDir(name string) bool {
	r, ok := strings.CutPrefix(name, "rank-")
	if !ok || r == "" || (len(r) > 1 && r[0] == '0') {
		return false
	}
	for _, c := range r {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// IsImagePath reports whether a slash-separated path relative to a generation (or
// checkpoint) folder is a checkpoint image: ckpt_*.dmtcp at the top or in a rank-<R>/ folder.
func IsImagePath(p string) bool {
	dir, name, nested := strings.Cut(p, "/")
	if !nested {
		return isImage(dir)
	}
	return isRankDir(dir) && !strings.Contains(name, "/") && isImage(name)
}

// stillWriting returns the first *.temp file under dir, or "".
func stillWriting(dir string) string {
	var found string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(d.Name(), ".temp") {
			found = p
			return fs.SkipAll
		}
		return nil
	})
	return found
}

// MoveFrom moves the files of a finished checkpoint from src (normally
// Store.CurrentDir) into the staging folder and returns their names. Entries
// of src that are not DMTCP checkpoint files stay where they are. It fails
// without moving anything if src holds a *.temp file (DMTCP is still
// writing) or no checkpoint file at all. Within one file system files are
// renamed; across file systems they are copied, fsynced and then removed
// from src. After an error the caller should Abort.
func (p *Pending) MoveFrom(src string) ([]string, error) {
	start := time.Now()
	defer func() { p.moved += time.Since(start) }()
	if p.done {
		return nil, fmt.Errorf("generation %d: move: already committed or aborted", p.number)
	}
	fi, err := os.Lstat(src)
	if err != nil {
		return nil, fmt.Errorf("generation %d: move from %s: %w", p.number, src, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("generation %d: move from %s: not a folder (%s)", p.number, src, fi.Mode().Type())
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return nil, fmt.Errorf("generation %d: move from %s: %w", p.number, src, err)
	}
	var names []string
	var dropLink bool
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".temp"):
			return nil, fmt.Errorf("generation %d: move from %s: %s is still being written; checkpoint not finished", p.number, src, name)
		case name == restartLink && e.Type()&fs.ModeSymlink != 0:
			dropLink = true
		case e.Type()&fs.ModeSymlink != 0:
			if isDMTCPFile(name, false) || isDMTCPFile(name, true) {
				return nil, fmt.Errorf("generation %d: move from %s: %s is a symlink", p.number, src, name)
			}
		case isDMTCPFile(name, e.IsDir()) && (e.IsDir() || e.Type().IsRegular()):
			if isRankDir(name) && e.IsDir() {
				if t := stillWriting(filepath.Join(src, name)); t != "" {
					return nil, fmt.Errorf("generation %d: move from %s: %s is still being written; checkpoint not finished", p.number, src, t)
				}
			}
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("generation %d: move from %s: no checkpoint files (ckpt_*.dmtcp) found", p.number, src)
	}
	for _, name := range names {
		from, to := filepath.Join(src, name), filepath.Join(p.dir, name)
		err := p.s.rename(from, to)
		if errors.Is(err, syscall.EXDEV) {
			err = copyTree(from, to)
			if err == nil {
				err = fsyncDir(p.dir)
			}
			if err == nil {
				err = os.RemoveAll(from)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("generation %d: move %s from %s: %w", p.number, name, src, err)
		}
	}
	if dropLink {
		if err := os.Remove(filepath.Join(src, restartLink)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("generation %d: move from %s: remove %s: %w", p.number, src, restartLink, err)
		}
	}
	if err := fsyncDir(p.dir); err != nil {
		return nil, fmt.Errorf("generation %d: move: %w", p.number, err)
	}
	if err := fsyncDir(src); err != nil {
		return nil, fmt.Errorf("generation %d: move: %w", p.number, err)
	}
	return names, nil
}

// copyTree copies a regular file or a folder of regular files and folders,
// fsyncing everything it creates; folders after their contents.
func copyTree(from, to string) error {
	type dir struct {
		path string
		perm fs.FileMode
	}
	var dirs []dir
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			dirs = append(dirs, dir{dst, info.Mode().Perm()})
			return os.Mkdir(dst, 0o700)
		case info.Mode().IsRegular():
			return copyFile(p, dst, info.Mode().Perm())
		default:
			return fmt.Errorf("%s: cannot copy %s", p, info.Mode().Type())
		}
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chmod(dirs[i].path, dirs[i].perm); err != nil {
			return err
		}
		if err := fsyncDir(dirs[i].path); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string, perm fs.FileMode) (err error) {
	in, err := os.OpenFile(from, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("copy %s: %w", from, err)
	}
	if err := out.Chmod(perm); err != nil {
		return err
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", to, err)
	}
	return nil
}

// Committed describes a successful commit.
type Committed struct {
	Generation Generation
	Files      int
	Bytes      int64
	// Duration covers MoveFrom (if used), hashing, fsync, the manifest and
	// the rename; VerifyDuration the re-read that follows.
	Duration       time.Duration
	VerifyDuration time.Duration
	// Pruned lists the generation numbers removed after the commit.
	// PruneErr is set if some could not be removed; the commit itself
	// succeeded.
	Pruned   []int
	PruneErr error
}

// BytesPerSecond is Bytes / Duration.
func (c Committed) BytesPerSecond() float64 {
	if c.Duration <= 0 {
		return 0
	}
	return float64(c.Bytes) / c.Duration.Seconds()
}

// String reads "generation 3: 512 MiB in 2.1 s (243 MiB/s)".
func (c Committed) String() string {
	const mib = 1 << 20
	return fmt.Sprintf("generation %d: %s in %.1f s (%.0f MiB/s)", c.Generation.Number,
		humanBytes(c.Bytes), c.Duration.Seconds(), c.BytesPerSecond()/mib)
}

func humanBytes(n int64) string {
	switch {
	case n >= 10<<30:
		return fmt.Sprintf("%.0f GiB", float64(n)/(1<<30))
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// CommitFrom is MoveFrom(src) followed by Commit(meta). If the move fails
// the staging folder is removed.
func (p *Pending) CommitFrom(src string, meta manifest.Meta) (Committed, error) {
	if _, err := p.MoveFrom(src); err != nil {
		p.Abort()
		return Committed{}, err
	}
	return p.Commit(meta)
}

// Commit turns the staging folder into generation Number(): it hashes and
// fsyncs every file, writes MANIFEST.json from meta (a zero EndTime means
// now), renames the folder to gen-NNNNNN, verifies it and prunes. On error
// the staging folder is gone and older generations are untouched.
func (p *Pending) Commit(meta manifest.Meta) (c Committed, err error) {
	if p.done {
		return Committed{}, fmt.Errorf("generation %d: commit: already committed or aborted", p.number)
	}
	p.done = true
	s := p.s
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	defer s.release(p.number)
	final := filepath.Join(s.root, GenDirName(p.number))
	renamed := false
	defer func() {
		if err == nil {
			return
		}
		if renamed {
			if rerr := os.RemoveAll(final); rerr != nil {
				err = fmt.Errorf("%w (and removing it failed: %v)", err, rerr)
			}
		} else if rerr := os.RemoveAll(p.dir); rerr != nil {
			err = fmt.Errorf("%w (and removing staging folder failed: %v)", err, rerr)
		}
		fsyncDir(s.root)
	}()
	fail := func(step string, err error) (Committed, error) {
		return Committed{}, fmt.Errorf("generation %d: commit: %s: %w", p.number, step, err)
	}

	start := time.Now()
	files, err := collect(p.dir)
	if err != nil {
		return fail("scan staging folder", err)
	}
	images := 0
	for _, f := range files {
		if IsImagePath(f.Path) {
			images++
		}
	}
	switch {
	case images == 0:
		return fail("check images", errors.New("no checkpoint image (ckpt_*.dmtcp) in the staging folder"))
	case p.expect > 0 && images != p.expect:
		return fail("check images", fmt.Errorf("expected %d checkpoint images, found %d: image missing", p.expect, images))
	}

	if meta.EndTime.IsZero() {
		meta.EndTime = time.Now()
	}
	m := &manifest.Manifest{Meta: meta, Generation: p.number, Files: files}
	data, err := manifest.Marshal(m)
	if err != nil {
		return fail("build manifest", err)
	}
	if err := atomicfile.Write(p.dir, manifest.FileName, data, atomicfile.Durable); err != nil {
		return fail("write manifest", err)
	}
	if err := fsyncDir(p.dir); err != nil {
		return fail("write manifest", err)
	}
	if _, err := os.Lstat(final); !errors.Is(err, fs.ErrNotExist) {
		return fail("rename", fmt.Errorf("%s already exists", final))
	}
	if err := s.rename(p.dir, final); err != nil {
		return fail("rename staging folder", err)
	}
	renamed = true
	if err := fsyncDir(s.root); err != nil {
		return fail("rename staging folder", err)
	}
	c.Duration = time.Since(start) + p.moved
	c.Files = len(files)
	c.Bytes = m.TotalSize()
	c.Generation = Generation{Number: p.number, Path: final, Time: meta.EndTime, Size: c.Bytes, Reason: meta.Reason}

	vstart := time.Now()
	if _, err := c.Generation.Verify(); err != nil {
		return Committed{}, fmt.Errorf("generation %d: commit: verify after rename failed, generation removed: %w", p.number, err)
	}
	c.VerifyDuration = time.Since(vstart)
	s.setVerified(p.number, true)

	c.Pruned, c.PruneErr = s.prune(p.number)
	return c, nil
}

// collect hashes and fsyncs every regular file under dir and fsyncs every
// folder. It drops DMTCP's restart-script symlink and refuses anything else
// that is not a regular file or folder.
func collect(dir string) ([]manifest.File, error) {
	var files []manifest.File
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		top := !strings.Contains(rel, "/")
		switch t := d.Type(); {
		case d.IsDir():
			dirs = append(dirs, p)
			return nil
		case t&fs.ModeSymlink != 0 && top && rel == restartLink:
			return os.Remove(p)
		case t&fs.ModeSymlink != 0:
			return fmt.Errorf("%s: unexpected symlink", rel)
		case !t.IsRegular():
			return fmt.Errorf("%s: unexpected %s", rel, t)
		case strings.HasSuffix(rel, ".temp"):
			return fmt.Errorf("%s: incomplete file (DMTCP still writing?)", rel)
		case top && (rel == manifest.FileName || atomicfile.IsTemp(rel, manifest.FileName)):
			return fmt.Errorf("%s: staging folder already has a manifest", rel)
		}
		f, err := hashAndSync(p)
		if err != nil {
			return err
		}
		f.Path = rel
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := fsyncDir(dirs[i]); err != nil {
			return nil, err
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

func hashAndSync(p string) (manifest.File, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return manifest.File{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return manifest.File{}, err
	}
	if !fi.Mode().IsRegular() {
		return manifest.File{}, fmt.Errorf("%s: not a regular file", path.Base(p))
	}
	size, sum, err := manifest.HashReader(f)
	if err != nil {
		return manifest.File{}, fmt.Errorf("read %s: %w", p, err)
	}
	if size != fi.Size() {
		return manifest.File{}, fmt.Errorf("%s: changed while hashing (%d bytes read, size %d)", p, size, fi.Size())
	}
	if err := f.Sync(); err != nil {
		return manifest.File{}, fmt.Errorf("fsync %s: %w", p, err)
	}
	// Drop the now-clean pages so that verification reads from storage
	// and the job gets its memory back; failure only costs that.
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	return manifest.File{Size: size, SHA256: sum, Mode: fi.Mode().Perm()}, nil
}
