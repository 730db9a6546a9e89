package facts

import (
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClassIsStableAndShort(t *testing.T) {
	intel := loadFacts(t, "intel-skylake-rhel9")
	c := Class(intel)
	assert.Regexp(t, regexp.MustCompile(`^c-[0-9a-f]{10}$`), c)
	// The id of a recorded fact set must never change: other nodes and
	// checkpoint manifests store it. Change classEncodingVersion instead.
	assert.Equal(t, "c-7b9bcaf97d", c)
	assert.Equal(t, c, Class(collectFixture(t, "intel-skylake-rhel9")))
	assert.Equal(t, "nodeprobe-class-v1\narch=x86_64\ncpu_vendor=GenuineIntel\nx86_64_level=4\n"+
		"feature_families=avx,avx2,avx512bw,avx512cd,avx512dq,avx512f,avx512vl\n"+
		"kernel_release=5.14.0-362.8.1.el9_3.x86_64\nvdso_size=8192\nvvar_size=16384\n"+
		"glibc_version=2.34\ndmtcp_version=3.0.0\npage_size=4096\n", CanonicalClass(intel))
}

func TestClassCoversOnlyRestoreFacts(t *testing.T) {
	base := loadFacts(t, "intel-skylake-rhel9")
	tests := []struct {
		name    string
		mutate  func(*Facts)
		changes bool
	}{
		{"hostname", func(f *Facts) { f.Hostname = "cn-intel99" }, false},
		{"collection time", func(f *Facts) { f.CollectedAt = f.CollectedAt.Add(time.Hour) }, false},
		{"cpu model name", func(f *Facts) { f.CPUModelName = "Intel(R) Xeon(R) Gold 6154" }, false},
		{"notes", func(f *Facts) { f.Notes = []string{"x"} }, false},
		{"pid_max", func(f *Facts) { f.PIDMax = 32768 }, false},
		{"os version", func(f *Facts) { f.OSVersionID = "9.4" }, false},
		{"arch", func(f *Facts) { f.Arch = "aarch64" }, true},
		{"vendor", func(f *Facts) { f.CPUVendor = "AuthenticAMD" }, true},
		{"x86 level", func(f *Facts) { f.X86Level = 3 }, true},
		{"feature families", func(f *Facts) { f.FeatureFamilies = []string{"avx", "avx2"} }, true},
		{"kernel", func(f *Facts) { f.KernelRelease = "5.14.0-427.el9.x86_64" }, true},
		{"vdso", func(f *Facts) { f.VDSOSize = 12288 }, true},
		{"vvar", func(f *Facts) { f.VVARSize = 20480 }, true},
		{"glibc", func(f *Facts) { f.GlibcVersion = "2.35" }, true},
		{"dmtcp", func(f *Facts) { f.DMTCPVersion = "3.1.0" }, true},
		{"page size", func(f *Facts) { f.PageSize = 65536 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := base
			f.FeatureFamilies = slices.Clone(base.FeatureFamilies)
			tt.mutate(&f)
			if tt.changes {
				assert.NotEqual(t, Class(base), Class(f))
			} else {
				assert.Equal(t, Class(base), Class(f))
			}
		})
	}
}

// findDiff returns the difference of the given fact and severity.
func findDiff(ds []Difference, fact string, sev Severity) (Difference, bool) {
	for _, d := range ds {
		if d.Fact == fact && d.Severity == sev {
			return d, true
		}
	}
	return Difference{}, false
}

func TestCompatible(t *testing.T) {
	intel := loadFacts(t, "intel-skylake-rhel9")
	amd := loadFacts(t, "amd-opteron-rocky8")
	arm := loadFacts(t, "arm64-neoverse-debian12")
	with := func(f Facts, mutate func(*Facts)) Facts {
		f.ISAFeatures = slices.Clone(f.ISAFeatures)
		f.FeatureFamilies = slices.Clone(f.FeatureFamilies)
		mutate(&f)
		return f
	}
	type want struct {
		fact     string
		severity Severity
		whySub   string
	}
	tests := []struct {
		name       string
		checkpoint Facts
		node       Facts
		compatible bool
		want       []want
		wantNone   []string
	}{
		{
			name: "same node", checkpoint: intel, node: intel, compatible: true,
		},
		{
			name: "another node of the same class", checkpoint: intel,
			node:       with(intel, func(f *Facts) { f.Hostname = "cn-intel02"; f.PIDMax = 32768 }),
			compatible: true,
			want: []want{
				{"hostname", Info, "does not depend on it"},
				{"pid_max", Info, "virtualises pids"},
			},
		},
		{
			name: "vdso size differs after a kernel update", checkpoint: intel,
			node: with(intel, func(f *Facts) {
				f.KernelRelease = "5.14.0-427.13.1.el9_4.x86_64"
				f.VDSOSize = 12288
			}),
			want: []want{
				{"vdso_size", Blocking, "vDSO size differs (8192 vs 12288): DMTCP restores the old vDSO mapping and fails with 'vdso size mismatch'"},
				{"kernel_release", Warning, "kernel release differs (5.14.0-362.8.1.el9_3.x86_64 vs 5.14.0-427.13.1.el9_4.x86_64)"},
			},
		},
		{
			name: "kernel differs but vdso and vvar match: warning only", checkpoint: intel,
			node:       with(intel, func(f *Facts) { f.KernelRelease = "5.14.0-427.13.1.el9_4.x86_64" }),
			compatible: true,
			want:       []want{{"kernel_release", Warning, "vDSO and vvar sizes match"}},
		},
		{
			name: "older CPU without AVX-512 cannot restore an AVX-512 checkpoint", checkpoint: intel, node: amd,
			want: []want{
				{"isa_features", Blocking, "avx512f"},
				{"isa_features", Blocking, "SIGILL"},
				{"x86_64_level", Blocking, "lower on the node (v4 vs v2)"},
				{"glibc_version", Blocking, "glibc version differs (2.34 vs 2.28)"},
				{"dmtcp_version", Blocking, "DMTCP version differs (3.0.0 vs 2.6.0)"},
				{"vvar_size", Blocking, "16384 vs 12288"},
				{"cpu_vendor", Warning, "GenuineIntel vs AuthenticAMD"},
				{"isa_features", Info, "xop"},
				{"os_release", Info, "rhel 9.3 vs rocky 8.9"},
			},
			wantNone: []string{"arch", "vdso_size", "page_size"},
		},
		{
			name: "a CPU with a superset of the features is compatible on that point",
			checkpoint: with(intel, func(f *Facts) {
				f.ISAFeatures = slices.DeleteFunc(f.ISAFeatures, func(s string) bool { return s == "rtm" || s == "hle" })
			}),
			node:       intel,
			compatible: true,
			want:       []want{{"isa_features", Info, "superset is fine"}},
		},
		{
			name:       "one missing feature is not",
			checkpoint: intel,
			node: with(intel, func(f *Facts) {
				f.ISAFeatures = slices.DeleteFunc(f.ISAFeatures, func(s string) bool { return s == "rtm" })
			}),
			want:     []want{{"isa_features", Blocking, "(rtm)"}},
			wantNone: []string{"x86_64_level"},
		},
		{
			name: "other architecture", checkpoint: intel, node: arm,
			want:     []want{{"arch", Blocking, "x86_64 vs aarch64"}},
			wantNone: []string{"isa_features", "x86_64_level"},
		},
		{
			name: "DMTCP absent on the node", checkpoint: intel,
			node: with(intel, func(f *Facts) { f.DMTCPVersion = "" }),
			want: []want{{"dmtcp_version", Blocking, "not installed on the node"}},
		},
		{
			name:       "checkpoint DMTCP version unknown is a warning",
			checkpoint: with(intel, func(f *Facts) { f.DMTCPVersion = "" }),
			node:       intel,
			compatible: true,
			want:       []want{{"dmtcp_version", Warning, "unknown"}},
		},
		{
			name: "unknown vdso size on one side is a warning", checkpoint: intel,
			node:       with(intel, func(f *Facts) { f.VDSOSize = 0 }),
			compatible: true,
			want:       []want{{"vdso_size", Warning, "8192 vs 0"}},
		},
		{
			name: "64k pages", checkpoint: arm,
			node: with(arm, func(f *Facts) { f.PageSize = 65536 }),
			want: []want{{"page_size", Blocking, "4096 vs 65536"}},
		},
		{
			name: "narrower address space", checkpoint: with(intel, func(f *Facts) { f.VirtualAddressBits = 57 }),
			node:       intel,
			compatible: true,
			want:       []want{{"virtual_address_bits", Warning, "57 vs 48"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, ds := Compatible(tt.checkpoint, tt.node)
			assert.Equal(t, tt.compatible, ok, "differences: %v", ds)
			assert.Equal(t, ds, Diff(tt.checkpoint, tt.node))
			for _, w := range tt.want {
				d, found := findDiff(ds, w.fact, w.severity)
				if assert.True(t, found, "no %s difference %q in %v", w.severity, w.fact, ds) {
					assert.Contains(t, d.Why, w.whySub)
				}
			}
			for _, fact := range tt.wantNone {
				for _, d := range ds {
					assert.NotEqual(t, fact, d.Fact, "unexpected %v", d)
				}
			}
			rank := map[Severity]int{Blocking: 0, Warning: 1, Info: 2}
			assert.True(t, slices.IsSortedFunc(ds, func(a, b Difference) int { return rank[a.Severity] - rank[b.Severity] }), "blocking first: %v", ds)
			if len(tt.want) == 0 {
				assert.Empty(t, ds)
			}
		})
	}
}

func TestDifferenceNamesBothValues(t *testing.T) {
	intel := loadFacts(t, "intel-skylake-rhel9")
	amd := loadFacts(t, "amd-opteron-rocky8")
	for _, d := range Diff(intel, amd) {
		assert.NotEmpty(t, d.Fact)
		assert.NotEmpty(t, d.Why)
		assert.Contains(t, []Severity{Blocking, Warning, Info}, d.Severity)
		assert.Contains(t, d.String(), d.Fact)
		require.False(t, d.A == d.B, "difference with equal values: %v", d)
	}
}

func BenchmarkCollect(b *testing.B) {
	opts := Options{DMTCPPrefix: b.TempDir()}
	for b.Loop() {
		if _, err := Collect(opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompatible(b *testing.B) {
	intel := loadFacts(b, "intel-skylake-rhel9")
	amd := loadFacts(b, "amd-opteron-rocky8")
	for b.Loop() {
		Compatible(intel, amd)
	}
}
