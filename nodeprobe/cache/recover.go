package cache

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// OpenOrRecover opens the database like Open. When the file is corrupt it
// moves it (and its -wal and -shm files) aside to path+".corrupt-<time>",
// so that nothing is lost for a person to look at, and starts a fresh
// database. movedTo is the new name of the corrupt file, empty when
// nothing was moved. A locked database is not touched.
func OpenOrRecover(path string, now time.Time, opts ...Option) (c *Cache, movedTo string, err error) {
	c, err = Open(path, opts...)
	if err == nil || !errors.Is(err, ErrCorrupt) {
		return c, "", err
	}
	openErr := err
	movedTo = path + ".corrupt-" + now.UTC().Format("20060102T150405Z")
	if _, err := os.Lstat(movedTo); err == nil {
		movedTo += fmt.Sprintf("-%d", now.UnixNano())
	}
	if err := os.Rename(path, movedTo); err != nil {
		return nil, "", fmt.Errorf("recover cache: move corrupt %s aside: %w (after: %w)", path, err, openErr)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Rename(path+suffix, movedTo+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, movedTo, fmt.Errorf("recover cache: move %s aside: %w", path+suffix, err)
		}
	}
	c, err = Open(path, opts...)
	if err != nil {
		return nil, movedTo, fmt.Errorf("recover cache: fresh database after moving the corrupt one to %s: %w", movedTo, err)
	}
	return c, movedTo, nil
}
