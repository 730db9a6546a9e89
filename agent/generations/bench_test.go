package generations

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkCommit commits a 64 MiB image per iteration (hash, fsync,
// manifest, rename, verify, prune). Writing the image is not timed.
func BenchmarkCommit(b *testing.B) {
	const size = 64 << 20
	data := make([]byte, size)
	_, _ = rand.Read(data)
	s, err := Open(filepath.Join(b.TempDir(), "job"), Options{Keep: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		p, err := s.Begin()
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p.Dir(), "ckpt_bench_1.dmtcp"), data, 0o600); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		c, err := p.Commit(meta())
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			b.Log(c.String())
		}
	}
}
