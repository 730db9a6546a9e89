package facts

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQuickMatchesCollect(t *testing.T) {
	for _, root := range []string{"", "testdata/roots/intel-skylake-rhel9", "testdata/roots/arm64-neoverse-debian12"} {
		t.Run(root, func(t *testing.T) {
			opts := Options{Root: root, DMTCPPrefix: t.TempDir()}
			full, err := Collect(opts)
			require.NoError(t, err)
			q, err := Quick(opts)
			require.NoError(t, err)
			assert.Equal(t, "", StaleAgainst(full, q), "Quick reads what Collect reads")
			assert.NotEmpty(t, q.KernelRelease)
		})
	}
	_, err := Quick(Options{Root: t.TempDir()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "quick facts")
}

func TestStaleAgainst(t *testing.T) {
	base := loadFacts(t, "intel-skylake-rhel9")
	for _, tc := range []struct {
		name   string
		change func(*Facts)
		want   string
	}{
		{"same", func(*Facts) {}, ""},
		{"new kernel", func(f *Facts) { f.KernelRelease = "5.14.0-500.el9.x86_64" }, "kernel 5.14.0-362.8.1.el9_3.x86_64, now 5.14.0-500.el9.x86_64"},
		{"vdso", func(f *Facts) { f.VDSOSize = 4096 }, "vdso size 8192, now 4096"},
		{"vvar", func(f *Facts) { f.VVARSize = 4096 }, "vvar size 16384, now 4096"},
		{"glibc", func(f *Facts) { f.GlibcVersion = "2.39" }, "glibc 2.34, now 2.39"},
		{"arch", func(f *Facts) { f.Arch = "" }, "arch x86_64, now unknown"},
		{"other facts do not count", func(f *Facts) { f.CPUCount = 1; f.DMTCPVersion = "9" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := base
			tc.change(&now)
			assert.Equal(t, tc.want, StaleAgainst(base, now))
		})
	}
}
