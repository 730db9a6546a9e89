package facts

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseCPUInfo(t *testing.T) {
	read := func(p string) string {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		return string(b)
	}
	hybrid := "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 151\nmodel name\t: 12th Gen Intel(R) Core(TM) i7-12700\nstepping\t: 2\nflags\t\t: fpu sse sse2 avx avx2 avx512f\n\n" +
		"processor\t: 1\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 151\nmodel name\t: 12th Gen Intel(R) Core(TM) i7-12700\nstepping\t: 2\nflags\t\t: fpu sse sse2 avx avx2\n"
	tests := []struct {
		name       string
		text       string
		want       CPUInfo
		wantFlags  []string
		noFlags    []string
		wantErrSub string
	}{
		{
			name:      "intel xeon, 4 cpus",
			text:      read("testdata/roots/intel-skylake-rhel9/proc/cpuinfo"),
			want:      CPUInfo{Vendor: "GenuineIntel", ModelName: "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz", Family: 6, Model: 85, Stepping: 4, Count: 4, VirtualAddressBits: 48},
			wantFlags: []string{"avx512f", "avx512vl"},
			noFlags:   []string{"hypervisor"},
		},
		{
			name:      "amd opteron",
			text:      read("testdata/roots/amd-opteron-rocky8/proc/cpuinfo"),
			want:      CPUInfo{Vendor: "AuthenticAMD", ModelName: "AMD Opteron(TM) Processor 6276", Family: 21, Model: 1, Stepping: 2, Count: 2, VirtualAddressBits: 48},
			wantFlags: []string{"xop", "fma4"},
			noFlags:   []string{"avx2"},
		},
		{
			name:      "arm64 neoverse",
			text:      read("testdata/roots/arm64-neoverse-debian12/proc/cpuinfo"),
			want:      CPUInfo{Vendor: "ARM", ModelName: "ARM part 0xd0c", Family: 8, Model: 0xd0c, Stepping: 1, Count: 2},
			wantFlags: []string{"asimd", "atomics"},
		},
		{
			name:      "hybrid cpus: only the flags every cpu has",
			text:      hybrid,
			want:      CPUInfo{Vendor: "GenuineIntel", ModelName: "12th Gen Intel(R) Core(TM) i7-12700", Family: 6, Model: 151, Stepping: 2, Count: 2},
			wantFlags: []string{"avx", "avx2", "fpu", "sse", "sse2"},
			noFlags:   []string{"avx512f"},
		},
		{name: "empty", text: "", wantErrSub: "no CPU"},
		{name: "bad model number", text: "processor : 0\nmodel : x\nflags : fpu\n", wantErrSub: `cpuinfo field "model"`},
		{name: "bad arm implementer", text: "processor : 0\nFeatures : fp\nCPU implementer : zz\n", wantErrSub: `"CPU implementer"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCPUInfo(tt.text)
			if tt.wantErrSub != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErrSub)
				return
			}
			require.NoError(t, err)
			assert.Subset(t, got.Flags, tt.wantFlags)
			for _, fl := range tt.noFlags {
				assert.NotContains(t, got.Flags, fl)
			}
			assert.IsNonDecreasing(t, got.Flags)
			got.Flags = nil
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestX86Level(t *testing.T) {
	v1 := "fpu cx8 cmov mmx fxsr sse sse2 syscall lm"
	v2 := v1 + " cx16 lahf_lm popcnt pni sse4_1 sse4_2 ssse3"
	v3 := v2 + " avx avx2 bmi1 bmi2 f16c fma abm movbe xsave"
	v4 := v3 + " avx512f avx512bw avx512cd avx512dq avx512vl"
	tests := []struct {
		name    string
		arch    string
		flags   string
		want    int
		missing []string
	}{
		{"baseline", "x86_64", v1, 1, nil},
		{"v2", "x86_64", v2, 2, nil},
		{"v3", "x86_64", v3, 3, nil},
		{"v4", "x86_64", v4, 4, nil},
		{"v4 flags without v3 (no movbe) stay v2", "x86_64", strings.Replace(v4, " movbe", "", 1), 2, []string{"movbe"}},
		{"avx512f only is v3", "x86_64", v3 + " avx512f", 3, []string{"avx512bw", "avx512cd", "avx512dq", "avx512vl"}},
		{"no sse2 is level 0", "x86_64", "fpu cx8 cmov mmx fxsr sse syscall", 0, []string{"sse2"}},
		{"not x86_64", "aarch64", v4, 0, nil},
		{"amd64 spelling", "amd64", v2, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flags := strings.Fields(tt.flags)
			assert.Equal(t, tt.want, X86Level(tt.arch, flags))
			if tt.missing != nil {
				assert.Equal(t, tt.missing, X86LevelMissing(tt.want+1, flags), "flags missing for v%d", tt.want+1)
			}
		})
	}
}

func TestISAFeaturesAndFamilies(t *testing.T) {
	tests := []struct {
		name         string
		arch         string
		flags        string
		wantFeatures []string
		wantFamilies []string
	}{
		{"x86 drops kernel and bug flags", "x86_64", "sse2 hypervisor constant_tsc pti avx2 avx512_vnni amx_tile sha_ni",
			[]string{"amx_tile", "avx2", "avx512_vnni", "sha_ni", "sse2"}, []string{"amx_tile", "avx2", "avx512_vnni"}},
		{"arm64 keeps every hwcap", "aarch64", "fp asimd sve evtstrm",
			[]string{"asimd", "evtstrm", "fp", "sve"}, []string{}},
		{"none", "x86_64", "", []string{}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flags := strings.Fields(tt.flags)
			assert.Equal(t, tt.wantFeatures, ISAFeatures(tt.arch, flags))
			assert.Equal(t, tt.wantFamilies, FeatureFamilies(flags))
		})
	}
}

func TestParseMaps(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    mapsInfo
		wantErr string
	}{
		{
			name: "kernel 6.18 with vvar_vclock",
			text: "7fa20583f000-7fa205843000 r--p 00000000 00:00 0 [vvar]\n" +
				"7fa205843000-7fa205845000 r--p 00000000 00:00 0 [vvar_vclock]\n" +
				"7fa205845000-7fa205847000 r-xp 00000000 00:00 0 [vdso]\n" +
				"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]\n",
			want: mapsInfo{VDSO: 8192, VVAR: 24576, Vsyscall: true},
		},
		{
			name: "no vdso (vdso=0 on the kernel command line)",
			text: "00400000-0040b000 r-xp 00000000 fd:00 33582 /usr/bin/cat\n7ffe0a7d2000-7ffe0a7f3000 rw-p 00000000 00:00 0 [stack]\n",
			want: mapsInfo{},
		},
		{
			name: "file paths with spaces do not confuse the parser",
			text: "00400000-0040b000 r-xp 00000000 fd:00 1 /tmp/my [vdso] file\n7ffe0a7fc000-7ffe0a7fe000 r-xp 00000000 00:00 0 [vdso]\n",
			want: mapsInfo{VDSO: 8192},
		},
		{name: "bad range", text: "zz-7ffe0a7fe000 r-xp 00000000 00:00 0 [vdso]\n", wantErr: `bad range "zz-7ffe0a7fe000"`},
		{name: "reversed range", text: "2000-1000 r-xp 00000000 00:00 0 [vdso]\n", wantErr: "bad range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMaps(bufio.NewScanner(strings.NewReader(tt.text)), "/proc/self/maps")
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Contains(t, err.Error(), "/proc/self/maps")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseDMTCPVersion(t *testing.T) {
	tests := []struct {
		name, out, want, wantErr string
	}{
		{"3.0.0 banner", "dmtcp_launch (DMTCP) 3.0.0\nLicense LGPLv3+\n", "3.0.0", ""},
		{"pre-release", "dmtcp_launch (DMTCP) 3.1.0-rc1\n", "3.1.0-rc1", ""},
		{"two-part", "dmtcp_launch (DMTCP) 2.6\n", "2.6", ""},
		{"other layout", "DMTCP version 2.5.2 (built for x86_64)\n", "2.5.2", ""},
		{"no version", "usage: dmtcp_launch [OPTIONS] <command>\n", "", "no DMTCP version"},
		{"empty", "", "", "no DMTCP version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDMTCPVersion(tt.out)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseOSRelease(t *testing.T) {
	tests := []struct {
		name, text, id, version string
	}{
		{"debian", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nID=debian\n", "debian", "12"},
		{"single quotes and comments", "# comment\nID='rocky'\nVERSION_ID='8.9'\n", "rocky", "8.9"},
		{"escaped", `ID="sles"` + "\n" + `VERSION_ID="15.5"` + "\n" + `NAME="SUSE \"Linux\""` + "\n", "sles", "15.5"},
		{"empty", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseOSRelease(tt.text)
			assert.Equal(t, tt.id, got["ID"])
			assert.Equal(t, tt.version, got["VERSION_ID"])
		})
	}
}

func TestReadCPUCount(t *testing.T) {
	tests := []struct {
		text    string
		want    int
		wantErr bool
	}{
		{"0\n", 1, false},
		{"0-3\n", 4, false},
		{"0-3,8,10-11\n", 7, false},
		{"3-1\n", 0, true},
		{"x\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSpace(tt.text), func(t *testing.T) {
			p := t.TempDir() + "/online"
			require.NoError(t, os.WriteFile(p, []byte(tt.text), 0o644))
			got, err := readCPUCount(p)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
