package facts

import (
	"os"
	"strings"
	"testing"
)

// BenchmarkProbeRunWithDMTCP is one probe run on this machine as the service does it,
// including dmtcp_launch --version (NODEPROBE_TEST_DMTCP_PREFIX, else /opt/dmtcp).
func BenchmarkProbeRunWithDMTCP(b *testing.B) {
	prefix := os.Getenv("NODEPROBE_TEST_DMTCP_PREFIX")
	if prefix == "" {
		prefix = "/opt/dmtcp"
	}
	if _, err := os.Stat(prefix + "/bin/dmtcp_launch"); err != nil {
		b.Skipf("SKIP: no DMTCP in %s (set NODEPROBE_TEST_DMTCP_PREFIX): %v", prefix, err)
	}
	opts := Options{DMTCPPrefix: prefix}
	for b.Loop() {
		f, err := Collect(opts)
		if err != nil {
			b.Fatal(err)
		}
		if f.DMTCPVersion == "" {
			b.Fatalf("no DMTCP version from %s: %v", prefix, f.Notes)
		}
	}
}

// BenchmarkCompatibilityCheckFromManifest is the restore-time check: decode the
// node_facts of a checkpoint manifest and compare them with this node's facts.
func BenchmarkCompatibilityCheckFromManifest(b *testing.B) {
	raw, err := os.ReadFile("testdata/manifest-intel.json")
	if err != nil {
		b.Fatal(err)
	}
	node := loadFacts(b, "amd-opteron-rocky8")
	text := string(raw)
	for b.Loop() {
		ckpt, err := Decode(strings.NewReader(text))
		if err != nil {
			b.Fatal(err)
		}
		if ok, _ := Compatible(ckpt, node); ok {
			b.Fatal("an AVX-512 checkpoint is not compatible with an Opteron")
		}
	}
}

// BenchmarkClass is the class id of a fact set (computed at every probe and publish).
func BenchmarkClass(b *testing.B) {
	f := loadFacts(b, "intel-skylake-rhel9")
	for b.Loop() {
		if c := Class(f); len(c) != 12 {
			b.Fatal(c)
		}
	}
}

// BenchmarkQuick is the agent's staleness check of a cached fact set (no program run).
func BenchmarkQuick(b *testing.B) {
	for b.Loop() {
		if _, err := Quick(Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
