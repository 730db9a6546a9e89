// Package cache keeps the facts a node probe collected in a local SQLite
// database: the latest facts for quick answers, and a history of changes
// with the time each fact set was first and last seen.
//
// The database runs in WAL journal mode with a busy timeout, so that other
// processes can read it while one probe writes. Schema changes are ordered
// migrations recorded in the schema_version table.
package cache

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/facts"
)

var (
	// ErrCorrupt means the file is not a usable SQLite database.
	ErrCorrupt = errors.New("cache database is corrupt")
	// ErrLocked means another process held the database longer than the
	// busy timeout.
	ErrLocked = errors.New("cache database is locked by another process")
	// ErrEmpty means no facts were recorded yet.
	ErrEmpty = errors.New("no facts recorded yet")
)

// DefaultPath is where the probe keeps its cache and where the agent reads it, unless
// configured otherwise (slurm-dmtcp-nodeprobe --db, plugstack.conf nodeprobe_cache=).
const DefaultPath = "/var/lib/slurm-dmtcp/nodefacts.db"

// DefaultBusyTimeout is how long a call waits for a lock held elsewhere.
const DefaultBusyTimeout = 5 * time.Second

// migrations are applied in order; migrations[i] brings the schema from
// version i to version i+1. Never edit one that was released: append.
var migrations = []string{
	// 1: one row per distinct fact set, in the order they were seen.
	`CREATE TABLE facts (
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		class      TEXT    NOT NULL,
		digest     TEXT    NOT NULL,
		facts_json TEXT    NOT NULL,
		first_seen TEXT    NOT NULL,
		last_seen  TEXT    NOT NULL,
		probes     INTEGER NOT NULL DEFAULT 1
	)`,
	// 2: look-ups by class (which nodes of a class, when a class appeared).
	`CREATE INDEX facts_class ON facts (class)`,
}

// LatestSchemaVersion is the schema version this package writes.
func LatestSchemaVersion() int { return len(migrations) }

// Cache is an open facts database.
type Cache struct {
	db   *sql.DB
	path string
}

// Entry is one recorded fact set.
type Entry struct {
	ID        int64       `json:"id"`
	Class     string      `json:"class"`
	Digest    string      `json:"digest"`
	Facts     facts.Facts `json:"facts"`
	FirstSeen time.Time   `json:"first_seen"`
	LastSeen  time.Time   `json:"last_seen"`
	Probes    int64       `json:"probes"`
}

type config struct {
	busyTimeout time.Duration
}

// Option tunes Open.
type Option func(*config)

// WithBusyTimeout sets how long calls wait for a lock held by another
// connection before failing with ErrLocked.
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) { c.busyTimeout = d }
}

// Open opens the database at path, creating its parent folder (0755) and
// the file (0644) when missing, and applies pending migrations.
func Open(path string, opts ...Option) (*Cache, error) {
	cfg := config{busyTimeout: DefaultBusyTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open cache %q: the path must be non-empty and free of '?' and '#'", path)
	}
	if err := createFile(path); err != nil {
		return nil, fmt.Errorf("open cache %s: %w", path, err)
	}
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(cfg.busyTimeout.Milliseconds()))
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Set("_txlock", "immediate") // a writer takes the write lock up front
	db, err := sql.Open("sqlite3", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open cache %s: %w", path, err)
	}
	c := &Cache{db: db, path: path}
	if err := c.init(); err != nil {
		db.Close()
		return nil, err
	}
	return c, nil
}

// createFile makes the parent folder and an empty database file with the
// documented permissions (not narrowed by the umask).
func createFile(path string) error {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create folder: %w", err)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			return fmt.Errorf("create folder: %w", err)
		}
	}
	fh, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	return nil
}

// init checks the file and applies pending migrations.
func (c *Cache) init() error {
	ctx := context.Background()
	if err := c.quickCheck(ctx); err != nil {
		return err
	}
	v, err := c.version(ctx, c.db)
	if err != nil {
		return c.wrap("open", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("open cache %s: schema version %d is newer than this program knows (%d)", c.path, v, len(migrations))
	}
	if v == len(migrations) {
		return nil // nothing to write: readers never take the write lock
	}
	return c.migrate(ctx)
}

// quickCheck runs PRAGMA quick_check and reports its first findings.
func (c *Cache) quickCheck(ctx context.Context) error {
	rows, err := c.db.QueryContext(ctx, `PRAGMA quick_check(5)`)
	if err != nil {
		return c.wrap("open", err)
	}
	defer rows.Close()
	var findings []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return c.wrap("open", err)
		}
		findings = append(findings, s)
	}
	if err := rows.Err(); err != nil {
		return c.wrap("open", err)
	}
	if len(findings) != 1 || findings[0] != "ok" {
		return fmt.Errorf("open cache %s: %w: quick_check: %s", c.path, ErrCorrupt, strings.Join(findings, "; "))
	}
	return nil
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// version returns the schema version, 0 for a new database.
func (c *Cache) version(ctx context.Context, q queryer) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'`).Scan(&n)
	if err != nil || n == 0 {
		return 0, err
	}
	var v int
	err = q.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

func (c *Cache) migrate(ctx context.Context) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return c.wrap("migrate", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	// Read the version again under the write lock: another process may
	// have migrated in the meantime.
	v, err := c.version(ctx, tx)
	if err != nil {
		return c.wrap("migrate", err)
	}
	if v == 0 {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
			return c.wrap("migrate", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return c.wrap("migrate", err)
		}
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return c.wrap(fmt.Sprintf("migrate to schema version %d", i+1), err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, len(migrations)); err != nil {
		return c.wrap("migrate", err)
	}
	if err := tx.Commit(); err != nil {
		return c.wrap("migrate", err)
	}
	return nil
}

// wrap names the path and the operation, and marks corrupt and locked
// databases with ErrCorrupt and ErrLocked.
func (c *Cache) wrap(op string, err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrNotADB, sqlite3.ErrCorrupt:
			return fmt.Errorf("%s cache %s: %w: %w", op, c.path, ErrCorrupt, err)
		case sqlite3.ErrBusy, sqlite3.ErrLocked:
			return fmt.Errorf("%s cache %s: %w: %w", op, c.path, ErrLocked, err)
		}
	}
	return fmt.Errorf("%s cache %s: %w", op, c.path, err)
}

// Path is the database file.
func (c *Cache) Path() string { return c.path }

// Close closes the database.
func (c *Cache) Close() error {
	if err := c.db.Close(); err != nil {
		return fmt.Errorf("close cache %s: %w", c.path, err)
	}
	return nil
}

// Version returns the schema version of the open database.
func (c *Cache) Version() (int, error) {
	v, err := c.version(context.Background(), c.db)
	if err != nil {
		return 0, c.wrap("read version of", err)
	}
	return v, nil
}

// Digest identifies a fact set regardless of when it was collected.
func Digest(f facts.Facts) (string, error) {
	f.CollectedAt = time.Time{}
	b, err := json.Marshal(f)
	if err != nil {
		return "", fmt.Errorf("encode facts: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Record stores the facts of one probe at time now. When they equal the
// latest recorded facts only last_seen (and the probe count) change and
// changed is false; otherwise a new history row is added.
func (c *Cache) Record(f facts.Facts, now time.Time) (changed bool, err error) {
	ctx := context.Background()
	digest, err := Digest(f)
	if err != nil {
		return false, fmt.Errorf("record in cache %s: %w", c.path, err)
	}
	body, err := json.Marshal(f)
	if err != nil {
		return false, fmt.Errorf("record in cache %s: encode facts: %w", c.path, err)
	}
	ts := formatTime(now)
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return false, c.wrap("record in", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op

	var id int64
	var last string
	err = tx.QueryRowContext(ctx, `SELECT id, digest FROM facts ORDER BY id DESC LIMIT 1`).Scan(&id, &last)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return false, c.wrap("record in", err)
	}
	if err == nil && last == digest {
		_, err = tx.ExecContext(ctx, `UPDATE facts SET last_seen = ?, probes = probes + 1 WHERE id = ?`, ts, id)
	} else {
		changed = true
		_, err = tx.ExecContext(ctx,
			`INSERT INTO facts (class, digest, facts_json, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)`,
			facts.Class(f), digest, string(body), ts, ts)
	}
	if err != nil {
		return false, c.wrap("record in", err)
	}
	if err := tx.Commit(); err != nil {
		return false, c.wrap("record in", err)
	}
	return changed, nil
}

const selectEntries = `SELECT id, class, digest, facts_json, first_seen, last_seen, probes FROM facts ORDER BY id DESC`

// Latest returns the most recent fact set, or ErrEmpty.
func (c *Cache) Latest() (Entry, error) {
	es, err := c.History(1)
	if err != nil {
		return Entry{}, err
	}
	if len(es) == 0 {
		return Entry{}, fmt.Errorf("read cache %s: %w", c.path, ErrEmpty)
	}
	return es[0], nil
}

// History returns up to limit fact sets, newest first (all when limit <= 0).
func (c *Cache) History(limit int) ([]Entry, error) {
	q, args := selectEntries, []any{}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := c.db.QueryContext(context.Background(), q, args...)
	if err != nil {
		return nil, c.wrap("read", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var body, first, last string
		if err := rows.Scan(&e.ID, &e.Class, &e.Digest, &body, &first, &last, &e.Probes); err != nil {
			return nil, c.wrap("read", err)
		}
		if err := json.Unmarshal([]byte(body), &e.Facts); err != nil {
			return nil, fmt.Errorf("read cache %s: row %d: decode facts: %w", c.path, e.ID, err)
		}
		if e.FirstSeen, err = parseTime(first); err != nil {
			return nil, fmt.Errorf("read cache %s: row %d: %w", c.path, e.ID, err)
		}
		if e.LastSeen, err = parseTime(last); err != nil {
			return nil, fmt.Errorf("read cache %s: row %d: %w", c.path, e.ID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, c.wrap("read", err)
	}
	return out, nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q: %w", s, err)
	}
	return t, nil
}
