package launch

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// placeFileCopies puts the copies of files that DMTCP saved beside a checkpoint's images
// (ckpt_<prog>_<id>_files/: files deleted while open, such as Python's
// tempfile.TemporaryFile, and shared-memory files) back into ckptDir, the checkpoint folder
// the restored processes had when they were checkpointed. DMTCP 5.0 records each copy by
// its absolute path there, and the agent has moved the copies into the generation (from):
// without this, the restore failed with "Unable to find checkpointed copy of file". ckptDir
// holds nothing else at that time, and the agent empties it before each checkpoint, so the
// copies never mix with a new checkpoint's files.
func placeFileCopies(from, ckptDir string) error {
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, "ckpt_") || !strings.HasSuffix(name, "_files") {
			continue
		}
		dst := filepath.Join(ckptDir, name)
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
		if err := copyTree(filepath.Join(from, name), dst); err != nil {
			return fmt.Errorf("files DMTCP saved with the checkpoint: %w", err)
		}
	}
	return nil
}

// copyTree copies the folders and regular files under src to dst (private to the user).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.Mkdir(target, 0o700)
		case d.Type().IsRegular():
			return copyFile(p, target)
		}
		return nil
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, st.Mode().Perm()&0o700)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
