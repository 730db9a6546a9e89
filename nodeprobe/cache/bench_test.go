package cache

import (
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkProbeRecordUnchanged is what each periodic probe writes when nothing changed:
// one transaction that bumps last_seen and probes.
func BenchmarkProbeRecordUnchanged(b *testing.B) {
	c, err := Open(filepath.Join(b.TempDir(), "nodefacts.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	f := sample("6.1.0", 8192)
	now := t0
	for b.Loop() {
		now = now.Add(time.Minute)
		if _, err := c.Record(f, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAgentReadsCache is the agent's read at job start: open read-only, latest facts,
// close.
func BenchmarkAgentReadsCache(b *testing.B) {
	path := filepath.Join(b.TempDir(), "nodefacts.db")
	w, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := w.Record(sample("6.1.0", 8192), t0); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		c, err := OpenReadOnly(path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Latest(); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
