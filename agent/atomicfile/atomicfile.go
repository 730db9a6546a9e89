// Package atomicfile writes a file whole or not at all: a temporary file beside it (mode
// 0600, never through a link), fsynced when asked, renamed into place. A reader sees the old
// file, or the new one complete.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Durable asks Write to fsync the file before the rename (it survives a crash of the node);
// without it the rename alone makes the write whole for readers on this node.
const Durable = true

// Write writes data to dir/name through a temporary file named TempPrefix(name)+random.
func Write(dir, name string, data []byte, sync bool) (err error) {
	f, err := os.CreateTemp(dir, TempPrefix(name)+"*")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: %w", dir, err)
		}
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if sync {
		if err = f.Sync(); err != nil {
			return err
		}
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// TempPrefix is how Write's temporary files for name begin (".name."): a folder scan that
// meets one knows it for a write that did not finish.
func TempPrefix(name string) string { return "." + name + "." }

// IsTemp reports whether base is one of Write's temporary files for name.
func IsTemp(base, name string) bool { return strings.HasPrefix(base, TempPrefix(name)) }
