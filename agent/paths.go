package agent

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
)

// ExpandTemplate fills a checkpoint folder template: %u user name, %U uid, %j job id,
// %h home folder, %% a percent sign. The result must be an absolute path.
func ExpandTemplate(tmpl string, u *user.User, jobID string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '%' {
			b.WriteByte(tmpl[i])
			continue
		}
		if i+1 == len(tmpl) {
			return "", fmt.Errorf("checkpoint_dir %q: lone %% at the end; use %%%% for a percent sign", tmpl)
		}
		i++
		switch tmpl[i] {
		case 'u':
			b.WriteString(u.Username)
		case 'U':
			b.WriteString(u.Uid)
		case 'j':
			b.WriteString(jobID)
		case 'h':
			b.WriteString(u.HomeDir)
		case '%':
			b.WriteByte('%')
		default:
			return "", fmt.Errorf("checkpoint_dir %q: unknown %%%c; known: %%u %%U %%j %%h %%%%", tmpl, tmpl[i])
		}
	}
	p := b.String()
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("checkpoint_dir %q expands to %q, not an absolute path", tmpl, p)
	}
	return filepath.Clean(p), nil
}

// PrivateDir creates dir (and missing parents, 0700) and makes sure it is a real folder, not
// a symbolic link, owned by uid, with mode 0700.
func PrivateDir(dir string, uid int) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("check %s: %w", dir, err)
	}
	if st.Mode()&os.ModeSymlink != 0 || !st.IsDir() {
		return fmt.Errorf("%s is not a folder (a symbolic link or a file): refusing to use it", dir)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != uid {
		return fmt.Errorf("%s belongs to uid %d, not to the job's user (uid %d): refusing to use it", dir, sys.Uid, uid)
	}
	if st.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("chmod 0700 %s: %w", dir, err)
		}
	}
	return nil
}
