package facts

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden facts JSON in testdata/facts")

var fixedNow = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// fixtureRoots maps each fake root under testdata/roots to the DMTCP prefix
// its golden facts were recorded with.
var fixtureRoots = map[string]string{
	"intel-skylake-rhel9":     "testdata/dmtcp-3.0.0",
	"amd-opteron-rocky8":      "testdata/dmtcp-2.6.0",
	"arm64-neoverse-debian12": "testdata/dmtcp-3.0.0",
}

func collectFixture(t testing.TB, name string) Facts {
	t.Helper()
	f, err := Collect(Options{
		Root:        filepath.Join("testdata", "roots", name),
		DMTCPPrefix: fixtureRoots[name],
		Now:         func() time.Time { return fixedNow },
	})
	require.NoError(t, err)
	f.DMTCPLaunch = filepath.ToSlash(f.DMTCPLaunch) // relative to the package
	return f
}

// loadFacts reads a golden facts file from testdata/facts.
func loadFacts(t testing.TB, name string) Facts {
	t.Helper()
	f, err := ReadFile(filepath.Join("testdata", "facts", name+".json"))
	require.NoError(t, err)
	return f
}

func TestCollectFixtures(t *testing.T) {
	tests := []struct {
		root      string
		arch      string
		vendor    string
		level     int
		families  []string
		release   string
		vdso      int64
		vvar      int64
		glibc     string
		dmtcp     string
		osID      string
		cpuCount  int
		pageSize  int
		aslr      int
		vsyscall  bool
		vaBits    int
		wantFlags []string
	}{
		{
			root: "intel-skylake-rhel9", arch: "x86_64", vendor: "GenuineIntel", level: 4,
			families: []string{"avx", "avx2", "avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl"},
			release:  "5.14.0-362.8.1.el9_3.x86_64", vdso: 8192, vvar: 16384, glibc: "2.34", dmtcp: "3.0.0",
			osID: "rhel", cpuCount: 4, pageSize: 4096, aslr: 2, vsyscall: true, vaBits: 48,
			wantFlags: []string{"avx512f", "rtm", "hle", "sse4_2"},
		},
		{
			root: "amd-opteron-rocky8", arch: "x86_64", vendor: "AuthenticAMD", level: 2,
			families: []string{"avx"},
			release:  "4.18.0-513.5.1.el8_9.x86_64", vdso: 8192, vvar: 12288, glibc: "2.28", dmtcp: "2.6.0",
			osID: "rocky", cpuCount: 2, pageSize: 4096, aslr: 2, vsyscall: true, vaBits: 48,
			wantFlags: []string{"xop", "fma4", "sse4a", "avx"},
		},
		{
			root: "arm64-neoverse-debian12", arch: "aarch64", vendor: "ARM", level: 0,
			families: []string{},
			release:  "6.1.0-13-cloud-arm64", vdso: 4096, vvar: 8192, glibc: "2.36", dmtcp: "3.0.0",
			osID: "debian", cpuCount: 2, pageSize: 4096, aslr: 0, vsyscall: false, vaBits: 0,
			wantFlags: []string{"asimd", "atomics", "sha2", "evtstrm"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.root, func(t *testing.T) {
			f := collectFixture(t, tt.root)
			assert.Equal(t, tt.arch, f.Arch)
			assert.Equal(t, tt.vendor, f.CPUVendor)
			assert.Equal(t, tt.level, f.X86Level)
			assert.Equal(t, tt.families, f.FeatureFamilies)
			assert.Equal(t, tt.release, f.KernelRelease)
			assert.Equal(t, tt.vdso, f.VDSOSize)
			assert.Equal(t, tt.vvar, f.VVARSize)
			assert.Equal(t, tt.glibc, f.GlibcVersion)
			assert.Equal(t, tt.dmtcp, f.DMTCPVersion)
			assert.Equal(t, tt.osID, f.OSID)
			assert.Equal(t, tt.cpuCount, f.CPUCount)
			assert.Equal(t, tt.pageSize, f.PageSize)
			assert.Equal(t, tt.aslr, f.RandomizeVASpace)
			assert.Equal(t, tt.vsyscall, f.VsyscallPresent)
			assert.Equal(t, tt.vaBits, f.VirtualAddressBits)
			assert.Subset(t, f.ISAFeatures, tt.wantFlags)
			assert.NotContains(t, f.ISAFeatures, "hypervisor")
			assert.NotContains(t, f.ISAFeatures, "constant_tsc")
			assert.Empty(t, f.Notes)
			assert.Equal(t, fixedNow, f.CollectedAt)

			golden := filepath.Join("testdata", "facts", tt.root+".json")
			got, err := json.MarshalIndent(f, "", "  ")
			require.NoError(t, err)
			if *update {
				require.NoError(t, os.WriteFile(golden, append(got, '\n'), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			assert.JSONEq(t, string(want), string(got), "golden %s is stale: run go test -update", golden)
		})
	}
}

func TestCollectDMTCP(t *testing.T) {
	tests := []struct {
		name        string
		prefix      string
		wantVersion string
		wantNote    string
	}{
		{"installed", "testdata/dmtcp-3.0.0", "3.0.0", ""},
		{"version printed with non-zero exit", "testdata/dmtcp-2.6.0", "2.6.0", ""},
		{"absent prefix", t.TempDir(), "", "dmtcp: not installed under prefix"},
		{"broken install", "testdata/dmtcp-broken", "", "dmtcp: testdata/dmtcp-broken/bin/dmtcp_launch --version: exit status 127"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Collect(Options{Root: "testdata/roots/intel-skylake-rhel9", DMTCPPrefix: tt.prefix})
			require.NoError(t, err)
			assert.Equal(t, tt.wantVersion, f.DMTCPVersion)
			if tt.wantNote == "" {
				assert.Empty(t, f.Notes)
				return
			}
			require.Len(t, f.Notes, 1)
			assert.Contains(t, f.Notes[0], tt.wantNote)
		})
	}
}

func TestCollectErrors(t *testing.T) {
	noCPU := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(noCPU, "proc/sys/kernel"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(noCPU, "proc/sys/kernel/osrelease"), []byte("6.1.0\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(noCPU, "proc/sys/kernel/arch"), []byte("x86_64\n"), 0o644))

	noArch := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(noArch, "proc/sys/kernel"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(noArch, "proc/sys/kernel/osrelease"), []byte("6.1.0\n"), 0o644))

	badCPU := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(badCPU, "proc/sys/kernel"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(badCPU, "proc/sys/kernel/osrelease"), []byte("6.1.0\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(badCPU, "proc/sys/kernel/arch"), []byte("x86_64\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(badCPU, "proc/cpuinfo"), []byte("processor : 0\ncpu family : six\nflags : fpu\n"), 0o644))

	tests := []struct {
		name, root, want string
	}{
		{"missing root", filepath.Join(t.TempDir(), "nope"), "kernel release"},
		{"no cpuinfo", noCPU, "read cpu info"},
		{"no arch file outside the real root", noArch, "proc/sys/kernel/arch is missing"},
		{"bad cpuinfo", badCPU, `cpuinfo field "cpu family"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Collect(Options{Root: tt.root, DMTCPPrefix: t.TempDir()})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), "collect facts")
		})
	}
}

func TestCollectPartialFactsGiveNotes(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "proc/sys/kernel"), 0o755))
	for name, body := range map[string]string{
		"proc/sys/kernel/osrelease": "6.1.0\n",
		"proc/sys/kernel/arch":      "x86_64\n",
		"proc/cpuinfo":              "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t: fpu cmov cx8 fxsr mmx syscall sse sse2\n",
	} {
		require.NoError(t, os.WriteFile(filepath.Join(root, name), []byte(body), 0o644))
	}
	f, err := Collect(Options{Root: root, DMTCPPrefix: t.TempDir()})
	require.NoError(t, err)
	assert.Equal(t, 1, f.X86Level)
	assert.Equal(t, -1, f.RandomizeVASpace)
	for _, want := range []string{"vdso:", "page size:", "randomize_va_space:", "pid_max:", "glibc:", "dmtcp:", "os-release:"} {
		found := false
		for _, n := range f.Notes {
			if len(n) >= len(want) && n[:len(want)] == want {
				found = true
			}
		}
		assert.True(t, found, "no note starting with %q in %q", want, f.Notes)
	}
}

func TestCollectRealNode(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads the real /proc")
	}
	f, err := Collect(Options{DMTCPPrefix: os.Getenv("NODEPROBE_TEST_DMTCP_PREFIX")})
	require.NoError(t, err)
	wantArch := map[string]string{"amd64": "x86_64", "arm64": "aarch64", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}[runtime.GOARCH]
	assert.Equal(t, wantArch, f.Arch)
	assert.NotEmpty(t, f.KernelRelease)
	assert.NotEmpty(t, f.CPUVendor)
	assert.NotEmpty(t, f.ISAFeatures)
	assert.Positive(t, f.VDSOSize)
	assert.Equal(t, os.Getpagesize(), f.PageSize)
	assert.Regexp(t, regexp.MustCompile(`^\d+\.\d+`), f.GlibcVersion)
	assert.NotEmpty(t, f.Hostname)
	assert.Positive(t, f.PIDMax)
	assert.Positive(t, f.CPUCount)
	if runtime.GOARCH == "amd64" {
		assert.GreaterOrEqual(t, f.X86Level, 1)
	}
	if f.DMTCPVersion == "" {
		assert.NotEmpty(t, f.Notes, "absent DMTCP must be explained in a note")
	}
	t.Logf("class %s, notes %q", Class(f), f.Notes)
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		wantErr string
		arch    string
	}{
		{"facts file", "testdata/facts/intel-skylake-rhel9.json", "", "x86_64"},
		{"manifest", "testdata/manifest-arm64.json", "", "aarch64"},
		{"neither", "testdata/not-facts.json", `neither a facts object`, ""},
		{"broken JSON", "testdata/broken.json", "decode facts JSON", ""},
		{"missing file", "testdata/does-not-exist.json", "no such file", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ReadFile(tt.path)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Contains(t, err.Error(), tt.path)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.arch, f.Arch)
		})
	}
}
