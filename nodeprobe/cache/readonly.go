package cache

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// OpenReadOnly opens an existing database for reading only, as a process that may not
// write the file or its folder (the agent, running as the job's user, reads the cache that
// the probe service writes as root). It never creates, migrates or recovers anything.
//
// SQLite can read a WAL database read-only only while its -wal and -shm files exist (a
// writer has it open) or can be created. When neither holds, no writer is active and the
// file is opened as immutable instead.
func OpenReadOnly(path string, opts ...Option) (*Cache, error) {
	cfg := config{busyTimeout: DefaultBusyTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open cache %q read-only: the path must be non-empty and free of '?' and '#'", path)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open cache read-only: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("open cache %s read-only: not a regular file", path)
	}
	c, err := openRO(path, cfg, false)
	if err == nil {
		return c, nil
	}
	if _, statErr := os.Stat(path + "-wal"); errors.Is(statErr, os.ErrNotExist) {
		if c, ierr := openRO(path, cfg, true); ierr == nil {
			return c, nil
		}
	}
	return nil, err
}

func openRO(path string, cfg config, immutable bool) (*Cache, error) {
	q := url.Values{}
	q.Set("mode", "ro")
	q.Set("_busy_timeout", fmt.Sprint(cfg.busyTimeout.Milliseconds()))
	if immutable {
		q.Set("immutable", "1")
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open cache %s read-only: %w", path, err)
	}
	c := &Cache{db: db, path: path}
	v, err := c.version(context.Background(), db)
	if err != nil {
		db.Close()
		return nil, c.wrap("open read-only", err)
	}
	if v > len(migrations) {
		db.Close()
		return nil, fmt.Errorf("open cache %s read-only: schema version %d is newer than this program knows (%d)", path, v, len(migrations))
	}
	if v == 0 {
		db.Close()
		return nil, fmt.Errorf("open cache %s read-only: %w (no schema yet)", path, ErrEmpty)
	}
	return c, nil
}
