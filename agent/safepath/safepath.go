// Package safepath creates and checks the folders of a job as its user, so that no other
// user can redirect them: every component of a path is opened from "/" with openat and
// O_NOFOLLOW, and must be owned by root or by the job's user; a folder that others may
// write into must be sticky (in it, only an entry's owner can rename or remove it). Once a
// path passes, nobody but root and the user can change where it leads.
//
// It also finds the user's folder under the plugin's runtime_dir (UserRunDir, RunDirs): a
// name that another user planted first is ignored, never followed.
package safepath

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// maxLinks bounds the symbolic links followed in one walk (as the kernel's MAXSYMLINKS).
const maxLinks = 40

// Error says which component of a path was refused and why. Key is the plugstack.conf key
// the path comes from (checkpoint_dir, runtime_dir).
type Error struct {
	Key       string
	Path      string // the whole path asked for
	Component string // the refused component
	Why       string
}

func (e *Error) Error() string {
	if e.Component == e.Path {
		return fmt.Sprintf("%s %s: %s: refusing to use it", e.Key, e.Path, e.Why)
	}
	return fmt.Sprintf("%s %s: %s %s: refusing to use it", e.Key, e.Path, e.Component, e.Why)
}

// ownerName is "uid N (name)", or "uid N" when the name is unknown.
func ownerName(uid uint32) string {
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		return fmt.Sprintf("uid %d (%s)", uid, u.Username)
	}
	return fmt.Sprintf("uid %d", uid)
}

// Walk opens the folder path component by component from "/" as the calling process and
// returns its descriptor (O_RDONLY|O_DIRECTORY, close-on-exec). Every component must be a
// folder owned by root or uid; a folder writable by its group or others must be sticky. A
// symbolic link owned by root or uid is followed (its target is walked the same way); one
// of anybody else is refused, and so is a link as the last component. With create, a
// missing component is made with mode 0700 (as the calling user). key names the setting in
// messages. The last component must be owned by uid.
func Walk(key, path string, uid int, create bool) (int, error) {
	return walk(key, path, uid, create, true)
}

// WalkParent is Walk for a folder that is a parent of the user's folders (runtime_dir): its
// last component may be root's, and must be sticky when others may write into it.
func WalkParent(key, path string, uid int) (int, error) {
	return walk(key, path, uid, false, false)
}

func walk(key, path string, uid int, create, leaf bool) (int, error) {
	if !filepath.IsAbs(path) {
		return -1, &Error{Key: key, Path: path, Component: path, Why: "is not an absolute path"}
	}
	refuse := func(comp, why string) (int, error) {
		return -1, &Error{Key: key, Path: path, Component: comp, Why: why}
	}
	rest := strings.Split(strings.Trim(filepath.Clean(path), "/"), "/")
	links := 0
restart:
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("%s %s: open /: %w", key, path, err)
	}
	cur := "/"
	if why := badFolder(fd, uid, leaf && len(rest) == 1 && rest[0] == ""); why != "" {
		unix.Close(fd)
		return refuse(cur, why)
	}
	for i := 0; i < len(rest); i++ {
		name := rest[i]
		if name == "" {
			continue
		}
		last := i == len(rest)-1
		next := filepath.Join(cur, name)
		nfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(fd, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(fd)
				return -1, fmt.Errorf("%s %s: create %s: %w", key, path, next, err)
			}
			nfd, err = unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			var st unix.Stat_t
			if serr := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); serr != nil {
				unix.Close(fd)
				return -1, fmt.Errorf("%s %s: check %s: %w", key, path, next, serr)
			}
			if st.Mode&unix.S_IFMT != unix.S_IFLNK {
				unix.Close(fd)
				return refuse(next, "is not a folder")
			}
			if st.Uid != 0 && int(st.Uid) != uid {
				unix.Close(fd)
				return refuse(next, fmt.Sprintf("is a symbolic link of %s, not of root or the job's user (uid %d)", ownerName(st.Uid), uid))
			}
			if last {
				unix.Close(fd)
				return refuse(next, "is a symbolic link, not a folder")
			}
			if links++; links > maxLinks {
				unix.Close(fd)
				return refuse(next, "leads through too many symbolic links")
			}
			target, rerr := readlinkat(fd, name)
			unix.Close(fd)
			if rerr != nil {
				return -1, fmt.Errorf("%s %s: read the link %s: %w", key, path, next, rerr)
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(cur, target) // cur holds real folders only: ".." is lexical
			}
			rest = append(strings.Split(strings.Trim(filepath.Clean(target), "/"), "/"), rest[i+1:]...)
			goto restart
		}
		if err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("%s %s: open %s: %w", key, path, next, err)
		}
		unix.Close(fd)
		fd, cur = nfd, next
		if why := badFolder(fd, uid, leaf && last); why != "" {
			unix.Close(fd)
			return refuse(cur, why)
		}
	}
	return fd, nil
}

// badFolder says what is wrong with the folder open at fd as a component of a checked path
// ("" when nothing): owned by someone other than root and uid (the last one: other than
// uid), or writable by others without the sticky bit (not checked for the last one, which
// the caller makes 0700).
func badFolder(fd, uid int, last bool) string {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "cannot be checked: " + err.Error()
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return "is not a folder"
	}
	if last && int(st.Uid) != uid {
		return fmt.Sprintf("belongs to %s, not to the job's user (uid %d)", ownerName(st.Uid), uid)
	}
	if st.Uid != 0 && int(st.Uid) != uid {
		return fmt.Sprintf("belongs to %s, not to root or the job's user (uid %d)", ownerName(st.Uid), uid)
	}
	if !last && st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0 {
		return fmt.Sprintf("is writable by others (mode %04o) and not sticky", st.Mode&0o7777)
	}
	return ""
}

func readlinkat(dirfd int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// PrivateDir creates path (missing components 0700, as the calling user) through Walk and
// leaves it a folder of uid with mode 0700.
func PrivateDir(key, path string, uid int) error {
	fd, err := Walk(key, path, uid, true)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return private(fd, key, path)
}

func private(fd int, key, path string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("%s %s: check: %w", key, path, err)
	}
	if st.Mode&0o7777 != 0o700 {
		if err := unix.Fchmod(fd, 0o700); err != nil {
			return fmt.Errorf("%s %s: chmod 0700: %w", key, path, err)
		}
	}
	return nil
}

// userDirName is the usual name of uid's folder under runtime_dir.
func userDirName(uid int) string { return "slurm-dmtcp-" + strconv.Itoa(uid) }

// Warner receives a line about a planted name that was passed over.
type Warner func(msg string)

// UserRunDir returns the calling user's (uid's) folder under runtimeDir, creating it when
// needed: runtimeDir/slurm-dmtcp-<uid> when that is a folder of uid's, else an existing
// runtimeDir/slurm-dmtcp-<uid>.<suffix> folder of uid's, else a new one with a random
// suffix. Anything else at those names (a folder or link of another user, a file) is
// passed over, told to warn, and never followed. runtimeDir itself must exist and pass Walk.
func UserRunDir(runtimeDir string, uid int, warn Warner) (string, error) {
	base, err := WalkParent("runtime_dir", runtimeDir, uid)
	if err != nil {
		return "", err
	}
	defer unix.Close(base)
	rt := filepath.Clean(runtimeDir)
	name := userDirName(uid)
	if err := unix.Mkdirat(base, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return "", fmt.Errorf("runtime_dir %s: create %s: %w", rt, name, err)
	}
	if why := ownFolder(base, name, uid); why == "" {
		return keepPrivate(base, rt, name)
	} else if warn != nil {
		warn(fmt.Sprintf("runtime folder %s %s: passed over, not used", filepath.Join(rt, name), why))
	}
	for _, n := range alternates(base, uid) {
		if ownFolder(base, n, uid) == "" {
			return keepPrivate(base, rt, n)
		}
	}
	for tries := 0; tries < 100; tries++ {
		n := name + "." + randomSuffix()
		err := unix.Mkdirat(base, n, 0o700)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("runtime_dir %s: create %s: %w", rt, n, err)
		}
		if why := ownFolder(base, n, uid); why != "" {
			return "", fmt.Errorf("runtime_dir %s: the folder %s just made %s", rt, n, why)
		}
		return keepPrivate(base, rt, n)
	}
	return "", fmt.Errorf("runtime_dir %s: no free name for a folder of uid %d", rt, uid)
}

// RunDirs lists uid's folders under runtimeDir (the usual name first, then the others by
// name) that are real folders owned by uid: where its agents' runtime folders are.
func RunDirs(runtimeDir string, uid int) []string {
	base, err := unix.Open(runtimeDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(base)
	var out []string
	for _, n := range append([]string{userDirName(uid)}, alternates(base, uid)...) {
		if ownFolder(base, n, uid) == "" {
			out = append(out, filepath.Join(filepath.Clean(runtimeDir), n))
		}
	}
	return out
}

// keepPrivate makes name (a folder of the user's under the folder open at base) 0700 and
// returns its path.
func keepPrivate(base int, rt, name string) (string, error) {
	p := filepath.Join(rt, name)
	fd, err := unix.Openat(base, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("runtime folder %s: %w", p, err)
	}
	defer unix.Close(fd)
	if err := private(fd, "runtime folder", p); err != nil {
		return "", err
	}
	return p, nil
}

// alternates lists the names slurm-dmtcp-<uid>.<suffix> in the folder open at base, sorted.
func alternates(base, uid int) []string {
	d := dupFolder(base)
	if d < 0 {
		return nil
	}
	f := os.NewFile(uintptr(d), "runtime_dir")
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	prefix := userDirName(uid) + "."
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) && len(n) > len(prefix) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// dupFolder opens the folder open at fd again (its own read position), or -1.
func dupFolder(fd int) int {
	d, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return d
}

// ownFolder says why name under the folder open at base is not a real folder of uid ("" when
// it is one). Nothing is followed.
func ownFolder(base int, name string, uid int) string {
	fd, err := unix.Openat(base, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		var st unix.Stat_t
		if unix.Fstatat(base, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return "is a symbolic link of " + ownerName(st.Uid)
		}
		return "cannot be opened as a folder: " + err.Error()
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "cannot be checked: " + err.Error()
	}
	if int(st.Uid) != uid {
		return "belongs to " + ownerName(st.Uid)
	}
	return ""
}

func randomSuffix() string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b [10]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b[:])
}
