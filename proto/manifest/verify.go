package manifest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
)

// Problem classifies a verification failure.
type Problem string

// The problems Verify reports.
const (
	ProblemManifest Problem = "manifest"        // MANIFEST.json missing, unreadable or invalid
	ProblemMissing  Problem = "missing"         // a listed file does not exist
	ProblemNotFile  Problem = "not a file"      // a listed path is a folder, symlink, device...
	ProblemSize     Problem = "size mismatch"   // truncated or extra bytes
	ProblemSHA256   Problem = "sha256 mismatch" // same size, different content
	ProblemMode     Problem = "mode mismatch"   // permission bits changed
	ProblemExtra    Problem = "unlisted file"   // a file in the folder the manifest does not list
	ProblemIO       Problem = "read error"      // an I/O error while reading a file
)

// VerifyError is the error Verify returns. Its message reads like
// "generation 7: ckpt_a.dmtcp: sha256 mismatch (manifest 3fa1..., on disk 9c0d...)".
type VerifyError struct {
	Dir        string  // the generation folder
	Generation int     // 0 if the manifest could not be read
	Path       string  // file relative to Dir; FileName for ProblemManifest
	Problem    Problem // what is wrong
	Detail     string  // human-readable detail, may be empty
	Err        error   // underlying error, may be nil
}

func (e *VerifyError) Error() string {
	prefix := e.Dir
	if e.Generation > 0 {
		prefix = fmt.Sprintf("generation %d", e.Generation)
	}
	s := fmt.Sprintf("%s: %s: %s", prefix, e.Path, e.Problem)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *VerifyError) Unwrap() error { return e.Err }

// Read reads and parses dir/MANIFEST.json without checking the files. It
// refuses a manifest that is a symlink.
func Read(dir string) (*Manifest, error) {
	data, err := readNoFollow(filepath.Join(dir, FileName))
	if err != nil {
		return nil, &VerifyError{Dir: dir, Path: FileName, Problem: ProblemManifest, Err: err}
	}
	m, err := Parse(data)
	if err != nil {
		return nil, &VerifyError{Dir: dir, Path: FileName, Problem: ProblemManifest, Err: err}
	}
	return m, nil
}

func readNoFollow(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 16<<20))
}

// Check reads dir/MANIFEST.json and makes the cheap checks of Verify: the
// folder holds exactly the listed files (presence, type, size, mode, no
// unlisted file). Nothing is hashed: it takes about the same time whatever the
// images' size. The first problem found is returned as a *VerifyError.
func Check(dir string) (*Manifest, error) {
	m, err := Read(dir)
	if err != nil {
		return nil, err
	}
	fail := func(path string, p Problem, detail string, err error) (*Manifest, error) {
		return m, &VerifyError{Dir: dir, Generation: m.Generation, Path: path, Problem: p, Detail: detail, Err: err}
	}

	listed := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		listed[filepath.FromSlash(f.Path)] = true
		fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(f.Path)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fail(f.Path, ProblemMissing, "", nil)
		case err != nil:
			return fail(f.Path, ProblemIO, "", err)
		case !fi.Mode().IsRegular():
			return fail(f.Path, ProblemNotFile, fi.Mode().Type().String(), nil)
		case fi.Size() != f.Size:
			return fail(f.Path, ProblemSize, sizeDetail(f.Size, fi.Size()), nil)
		case fi.Mode().Perm() != f.Mode:
			return fail(f.Path, ProblemMode, fmt.Sprintf("manifest %04o, on disk %04o", uint32(f.Mode), uint32(fi.Mode().Perm())), nil)
		}
	}

	// Anything else in the folder (other than directories leading to listed
	// files and the manifest itself) is unexpected.
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." || rel == FileName || listed[rel] {
			return nil
		}
		if d.IsDir() {
			return nil
		}
		return &VerifyError{Dir: dir, Generation: m.Generation, Path: filepath.ToSlash(rel),
			Problem: ProblemExtra, Detail: d.Type().String()}
	})
	if err != nil {
		var ve *VerifyError
		if errors.As(err, &ve) {
			return m, ve
		}
		return fail(".", ProblemIO, "", err)
	}
	return m, nil
}

// Verify is Check, then a sha256 of every listed file against the manifest.
// Files are hashed on every core at once (a process's images are hashed apart
// from each other). The problem of the first listed file found damaged is
// returned as a *VerifyError.
func Verify(dir string) (*Manifest, error) {
	m, err := Check(dir)
	if err != nil {
		return m, err
	}
	errs := make([]error, len(m.Files))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0), len(m.Files)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = verifyFile(dir, m.Generation, m.Files[i])
			}
		}()
	}
	for i := range m.Files {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return m, err
		}
	}
	return m, nil
}

// verifyFile hashes one listed file of dir against the manifest's entry.
func verifyFile(dir string, gen int, f File) error {
	fail := func(p Problem, detail string, err error) error {
		return &VerifyError{Dir: dir, Generation: gen, Path: f.Path, Problem: p, Detail: detail, Err: err}
	}
	size, sum, err := HashFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
	switch {
	case err != nil:
		return fail(ProblemIO, "", err)
	case size != f.Size:
		return fail(ProblemSize, sizeDetail(f.Size, size), nil)
	case sum != f.SHA256:
		return fail(ProblemSHA256, fmt.Sprintf("manifest %.12s..., on disk %.12s...", f.SHA256, sum), nil)
	}
	return nil
}

func sizeDetail(want, got int64) string {
	switch {
	case got < want:
		return fmt.Sprintf("manifest %d bytes, on disk %d bytes: truncated by %d bytes", want, got, want-got)
	default:
		return fmt.Sprintf("manifest %d bytes, on disk %d bytes: %d extra bytes", want, got, got-want)
	}
}

// HashFile returns the size and lower-case hex sha256 of the regular file at
// p, which is opened with O_NOFOLLOW.
func HashFile(p string) (int64, string, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	return HashReader(f)
}

// HashReader returns the number of bytes read from r and their sha256.
func HashReader(r io.Reader) (int64, string, error) {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	n, err := io.CopyBuffer(h, r, buf)
	if err != nil {
		return n, "", err
	}
	return n, hexSum(h.Sum(nil)), nil
}
