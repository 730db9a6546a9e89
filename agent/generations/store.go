package generations

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slurm-dmtcp/slurm-dmtcp/proto/manifest"
)

const (
	// DefaultKeep is the number of verified generations kept when
	// Options.Keep is 0.
	DefaultKeep = 2
	// CurrentDirName is the folder under the root that DMTCP is launched
	// with as --ckptdir.
	CurrentDirName = ".current"

	lockName       = ".lock"
	stagingPrefix  = ".staging-"
	deletingPrefix = ".deleting-"
	genPrefix      = "gen-"
)

var (
	// ErrLocked is returned by Open when another process holds the root.
	ErrLocked = errors.New("checkpoint folder is in use by another agent")
	// ErrNoVerified is returned by NewestVerified when no generation
	// verifies.
	ErrNoVerified = errors.New("no verified generation")
)

// Options configure a Store.
type Options struct {
	// Keep is how many verified generations survive pruning (>= 1);
	// 0 means DefaultKeep.
	Keep int
}

// Store manages the generations under one job checkpoint folder.
type Store struct {
	root  string
	keep  int
	lock  *os.File
	stale []string

	// rename is os.Rename; tests replace it to simulate EXDEV.
	rename func(oldpath, newpath string) error

	mu       sync.Mutex // guards inflight, verified, closed
	inflight map[int]bool
	verified map[int]bool // generations this Store has verified
	closed   bool

	commitMu sync.Mutex // serialises Commit and pruning
}

// Open opens (creating it 0700 if needed) the checkpoint folder root. It
// refuses a root that is a symlink, not a folder or not owned by the
// effective uid, tightens its mode to 0700, locks it, creates .current and
// removes stale .staging-* and .deleting-* folders left by a killed agent.
func Open(root string, opts Options) (*Store, error) {
	keep := opts.Keep
	if keep == 0 {
		keep = DefaultKeep
	}
	if keep < 1 {
		return nil, fmt.Errorf("generations: keep %d: must be >= 1", keep)
	}
	root = filepath.Clean(root)
	if parent := filepath.Dir(root); parent != root {
		if err := os.MkdirAll(parent, 0o700); err != nil {
			return nil, fmt.Errorf("generations: create parent of %s: %w", root, err)
		}
	}
	if err := os.Mkdir(root, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("generations: create %s: %w", root, err)
	}
	if err := checkOwnedDir(root, true); err != nil {
		return nil, fmt.Errorf("generations: %w", err)
	}

	lock, err := os.OpenFile(filepath.Join(root, lockName), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("generations: open lock file: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("generations: %s: %w", root, ErrLocked)
		}
		return nil, fmt.Errorf("generations: lock %s: %w", root, err)
	}
	s := &Store{
		root: root, keep: keep, lock: lock, rename: os.Rename,
		inflight: map[int]bool{}, verified: map[int]bool{},
	}
	fail := func(err error) (*Store, error) {
		s.Close()
		return nil, err
	}

	cur := s.CurrentDir()
	if err := os.Mkdir(cur, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fail(fmt.Errorf("generations: create %s: %w", cur, err))
	}
	if err := checkOwnedDir(cur, false); err != nil {
		return fail(fmt.Errorf("generations: %w", err))
	}

	entries, err := os.ReadDir(root)
	if err != nil {
		return fail(fmt.Errorf("generations: read %s: %w", root, err))
	}
	for _, e := range entries {
		if name := e.Name(); strings.HasPrefix(name, stagingPrefix) || strings.HasPrefix(name, deletingPrefix) {
			if err := os.RemoveAll(filepath.Join(root, name)); err != nil {
				return fail(fmt.Errorf("generations: remove stale %s: %w", name, err))
			}
			s.stale = append(s.stale, name)
		}
	}
	if len(s.stale) > 0 {
		if err := fsyncDir(root); err != nil {
			return fail(fmt.Errorf("generations: %w", err))
		}
	}
	return s, nil
}

// checkOwnedDir makes sure p is a real folder (not a symlink) owned by the
// effective uid; with tighten it also removes group and other permissions.
// The checks run on a descriptor opened with O_NOFOLLOW, so a symlink swapped
// in after Lstat is refused as well.
func checkOwnedDir(p string, tighten bool) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symlink; refusing to use it as a checkpoint folder", p)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a folder (%s)", p, fi.Mode().Type())
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", p, err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("stat %s: %w", p, err)
	}
	if uid := os.Geteuid(); int(st.Uid) != uid {
		return fmt.Errorf("%s is owned by uid %d, not by the current uid %d; refusing to use it", p, st.Uid, uid)
	}
	if tighten && st.Mode&0o077 != 0 {
		if err := unix.Fchmod(int(f.Fd()), 0o700); err != nil {
			return fmt.Errorf("chmod 0700 %s: %w", p, err)
		}
	}
	return nil
}

// Close releases the lock. Pending commits must be finished first.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.lock.Close() // closing the descriptor releases the flock
}

// Root is the job checkpoint folder.
func (s *Store) Root() string { return s.root }

// CurrentDir is <root>/.current, the --ckptdir to launch DMTCP with.
func (s *Store) CurrentDir() string { return filepath.Join(s.root, CurrentDirName) }

// Keep is the number of verified generations kept by pruning.
func (s *Store) Keep() int { return s.keep }

// StaleRemoved lists the .staging-* and .deleting-* folders Open removed.
func (s *Store) StaleRemoved() []string { return append([]string(nil), s.stale...) }

// GenDirName is the folder name of generation n: gen-000007.
func GenDirName(n int) string { return fmt.Sprintf("%s%06d", genPrefix, n) }

// parseGenDirName returns n for a canonical gen-NNNNNN name.
func parseGenDirName(name string) (int, bool) {
	digits, ok := strings.CutPrefix(name, genPrefix)
	if !ok || len(digits) < 6 {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 1 || GenDirName(n) != name {
		return 0, false
	}
	return n, true
}

// Generation is one gen-NNNNNN folder. Time and Size come from its manifest
// and are zero when the manifest cannot be read (ManifestErr says why);
// whether the files match is only known after Verify.
type Generation struct {
	Number      int
	Path        string
	Time        time.Time // end time of the checkpoint
	Size        int64     // total bytes of the listed files
	Reason      manifest.Reason
	ManifestErr error
}

// Verify re-reads every file of the generation and checks it against the
// manifest, which must name this generation's number.
func (g Generation) Verify() (*manifest.Manifest, error) {
	m, err := manifest.Verify(g.Path)
	if err != nil {
		var ve *manifest.VerifyError
		if errors.As(err, &ve) && ve.Generation == 0 {
			ve.Generation = g.Number
		}
		return nil, err
	}
	if m.Generation != g.Number {
		return nil, &manifest.VerifyError{Dir: g.Path, Generation: g.Number, Path: manifest.FileName,
			Problem: manifest.ProblemManifest, Detail: fmt.Sprintf("manifest names generation %d", m.Generation)}
	}
	return m, nil
}

// Check makes the cheap checks of Verify (manifest, files present with their size and
// mode, nothing else): no file is read.
func (g Generation) Check() (*manifest.Manifest, error) {
	m, err := manifest.Check(g.Path)
	if err != nil {
		var ve *manifest.VerifyError
		if errors.As(err, &ve) && ve.Generation == 0 {
			ve.Generation = g.Number
		}
		return nil, err
	}
	if m.Generation != g.Number {
		return nil, &manifest.VerifyError{Dir: g.Path, Generation: g.Number, Path: manifest.FileName,
			Problem: manifest.ProblemManifest, Detail: fmt.Sprintf("manifest names generation %d", m.Generation)}
	}
	return m, nil
}

// List returns the generations, oldest first. It reads each manifest but
// verifies nothing.
func (s *Store) List() ([]Generation, error) {
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("generations: list %s: %w", s.root, err)
	}
	var gens []Generation
	for _, e := range entries {
		n, ok := parseGenDirName(e.Name())
		if !ok || !e.IsDir() { // DirEntry.IsDir is false for a symlink
			continue
		}
		g := Generation{Number: n, Path: filepath.Join(s.root, e.Name())}
		if m, err := manifest.Read(g.Path); err != nil {
			g.ManifestErr = err
		} else {
			g.Time, g.Size, g.Reason = m.EndTime, m.TotalSize(), m.Reason
		}
		gens = append(gens, g)
	}
	sort.Slice(gens, func(i, j int) bool { return gens[i].Number < gens[j].Number })
	return gens, nil
}

// Skipped is a generation NewestVerified passed over, and why.
type Skipped struct {
	Generation Generation
	Err        error
}

func (k Skipped) String() string {
	return fmt.Sprintf("skipping damaged generation %d: %v", k.Generation.Number, k.Err)
}

// NewestVerified verifies generations from newest to oldest and returns the
// first that verifies, together with the newer ones it skipped. The restart
// path logs each Skipped and falls back to the returned generation. If none
// verifies the error wraps ErrNoVerified.
func (s *Store) NewestVerified() (Generation, []Skipped, error) {
	return s.newest(true)
}

// NewestIntact is NewestVerified with Generation.Check: the newest generation that is whole
// as far as can be seen without reading its images. It is not verified: Verify it before
// restoring it.
func (s *Store) NewestIntact() (Generation, []Skipped, error) {
	return s.newest(false)
}

// newest is the newest generation that verifies (full) or passes Check (not full).
func (s *Store) newest(full bool) (Generation, []Skipped, error) {
	gens, err := s.List()
	if err != nil {
		return Generation{}, nil, err
	}
	var skipped []Skipped
	for i := len(gens) - 1; i >= 0; i-- {
		g := gens[i]
		check := g.Check
		if full {
			check = g.Verify
		}
		if _, err := check(); err != nil {
			s.setVerified(g.Number, false)
			skipped = append(skipped, Skipped{Generation: g, Err: err})
			continue
		}
		if full {
			s.setVerified(g.Number, true)
		}
		return g, skipped, nil
	}
	return Generation{}, skipped, fmt.Errorf("generations: %s: %w (%d generation(s), %d damaged)",
		s.root, ErrNoVerified, len(gens), len(skipped))
}

func (s *Store) setVerified(n int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		s.verified[n] = true
	} else {
		delete(s.verified, n)
	}
}

// isVerified verifies g unless this Store already did. Generations are
// immutable, so the cached answer is used for pruning decisions; the restart
// path (NewestVerified) always re-reads.
func (s *Store) isVerified(g Generation) bool {
	s.mu.Lock()
	ok := s.verified[g.Number]
	s.mu.Unlock()
	if ok {
		return true
	}
	_, err := g.Verify()
	s.setVerified(g.Number, err == nil)
	return err == nil
}

// prune keeps the newest verified generation newest and the next keep-1
// verified older ones; every other generation older than newest is removed.
func (s *Store) prune(newest int) ([]int, error) {
	gens, err := s.List()
	if err != nil {
		return nil, err
	}
	kept := 0
	var pruned []int
	var errs []error
	for i := len(gens) - 1; i >= 0; i-- {
		g := gens[i]
		if g.Number > newest {
			continue
		}
		if g.Number == newest || (kept < s.keep && s.isVerified(g)) {
			kept++
			continue
		}
		if err := s.remove(g); err != nil {
			errs = append(errs, err)
			continue
		}
		pruned = append(pruned, g.Number)
	}
	return pruned, errors.Join(errs...)
}

// remove renames a generation out of the gen-* namespace first, so that a
// crash half way through never leaves a partial gen-* folder.
func (s *Store) remove(g Generation) error {
	tmp, err := os.MkdirTemp(s.root, fmt.Sprintf("%s%d-", deletingPrefix, g.Number))
	if err != nil {
		return fmt.Errorf("prune generation %d: %w", g.Number, err)
	}
	target := filepath.Join(tmp, filepath.Base(g.Path))
	if err := s.rename(g.Path, target); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("prune generation %d: %w", g.Number, err)
	}
	s.setVerified(g.Number, false)
	if err := fsyncDir(s.root); err != nil {
		return fmt.Errorf("prune generation %d: %w", g.Number, err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("prune generation %d: remove %s: %w", g.Number, tmp, err)
	}
	return nil
}

// Begin reserves the next generation number (newest existing + 1) and
// creates its staging folder (0700).
func (s *Store) Begin() (*Pending, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("generations: store is closed")
	}
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("generations: begin: %w", err)
	}
	next := 1
	for _, e := range entries {
		if n, ok := parseGenDirName(e.Name()); ok && n >= next {
			next = n + 1
		}
	}
	for n := range s.inflight {
		if n >= next {
			next = n + 1
		}
	}
	dir, err := os.MkdirTemp(s.root, fmt.Sprintf("%s%d-", stagingPrefix, next))
	if err != nil {
		return nil, fmt.Errorf("generations: begin generation %d: %w", next, err)
	}
	s.inflight[next] = true
	return &Pending{s: s, number: next, dir: dir}, nil
}

func (s *Store) release(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inflight, n)
}

func fsyncDir(p string) error {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fsync folder %s: %w", p, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync folder %s: %w", p, err)
	}
	return nil
}
