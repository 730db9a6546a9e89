package facts

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Severity says how much a difference matters for restoring a checkpoint.
type Severity string

const (
	// Blocking differences make a restore fail (or crash soon after).
	Blocking Severity = "blocking"
	// Warning differences may break some restored programs.
	Warning Severity = "warning"
	// Info differences do not matter for restore; they are reported so
	// that a person can see what else differs.
	Info Severity = "info"
)

// Difference is one fact that differs between two nodes, A (the node a
// checkpoint was taken on) and B (the node it would be restored on).
type Difference struct {
	Fact     string   `json:"fact"`
	A        string   `json:"a"`
	B        string   `json:"b"`
	Severity Severity `json:"severity"`
	Why      string   `json:"why"`
}

func (d Difference) String() string {
	return fmt.Sprintf("%s %s: %s", d.Severity, d.Fact, d.Why)
}

// Diff lists the differences between the facts of node a (where a checkpoint
// was taken) and node b (where it would be restored), most severe first.
// It is directional for CPU features: features b lacks are blocking,
// features only b has are not.
func Diff(a, b Facts) []Difference {
	var ds []Difference
	add := func(fact, va, vb string, sev Severity, why string) {
		ds = append(ds, Difference{Fact: fact, A: va, B: vb, Severity: sev, Why: why})
	}
	str := func(fact, va, vb string, sev Severity, why func(va, vb string) string) {
		if va != vb {
			add(fact, va, vb, sev, why(show(va), show(vb)))
		}
	}
	num := func(fact string, va, vb int64, sev Severity, why func(va, vb string) string) {
		if va != vb {
			sa, sb := strconv.FormatInt(va, 10), strconv.FormatInt(vb, 10)
			add(fact, sa, sb, sev, why(sa, sb))
		}
	}

	str("arch", a.Arch, b.Arch, Blocking, func(x, y string) string {
		return fmt.Sprintf("CPU architecture differs (%s vs %s): a checkpoint image holds machine code and registers of one architecture and cannot run on another", x, y)
	})
	diffFeatures(a, b, add)
	diffX86Level(a, b, add)
	str("cpu_vendor", a.CPUVendor, b.CPUVendor, Warning, func(x, y string) string {
		return fmt.Sprintf("CPU vendor differs (%s vs %s): glibc and other libraries detect the CPU once at start-up and keep their vendor-specific choices after restart; instruction sets are compared separately, but vendor-specific tuning or instructions may misbehave", x, y)
	})
	num("vdso_size", a.VDSOSize, b.VDSOSize, sizeSeverity(a.VDSOSize, b.VDSOSize), func(x, y string) string {
		return fmt.Sprintf("vDSO size differs (%s vs %s): DMTCP restores the old vDSO mapping and fails with 'vdso size mismatch'", x, y)
	})
	num("vvar_size", a.VVARSize, b.VVARSize, sizeSeverity(a.VVARSize, b.VVARSize), func(x, y string) string {
		return fmt.Sprintf("vvar size differs (%s vs %s): DMTCP moves the running kernel's vvar pages (the data the vDSO reads) to where the checkpointed process had them, and a different size cannot be placed there", x, y)
	})
	num("page_size", int64(a.PageSize), int64(b.PageSize), Blocking, func(x, y string) string {
		return fmt.Sprintf("page size differs (%s vs %s): the checkpointed memory map is aligned to the old page size and cannot be mapped again with another one", x, y)
	})
	diffDMTCP(a, b, add)
	str("glibc_version", a.GlibcVersion, b.GlibcVersion, knownSeverity(a.GlibcVersion, b.GlibcVersion, Blocking), func(x, y string) string {
		return fmt.Sprintf("glibc version differs (%s vs %s): the restored process keeps the old glibc in memory, but whatever it loads after restart (NSS modules, iconv, dlopen'ed libraries, DMTCP's plugins) comes from the node's glibc and fails with symbol version errors or crashes", x, y)
	})
	str("kernel_release", a.KernelRelease, b.KernelRelease, Warning, func(x, y string) string {
		return fmt.Sprintf("kernel release differs (%s vs %s): DMTCP restores user memory only, so a restore can work when the vDSO and vvar sizes match, but a kernel change is a common cause of restart failures (changed vDSO layout, system calls, /proc formats); test restores before relying on it", x, y)
	})
	if b.VirtualAddressBits != 0 && a.VirtualAddressBits > b.VirtualAddressBits {
		num("virtual_address_bits", int64(a.VirtualAddressBits), int64(b.VirtualAddressBits), Warning, func(x, y string) string {
			return fmt.Sprintf("virtual address width is smaller on the node (%s vs %s bits): memory the process had mapped above the node's limit cannot be restored", x, y)
		})
	} else {
		num("virtual_address_bits", int64(a.VirtualAddressBits), int64(b.VirtualAddressBits), Info, func(x, y string) string {
			return fmt.Sprintf("virtual address width differs (%s vs %s bits): the node can map every address the checkpoint used", x, y)
		})
	}
	num("randomize_va_space", int64(a.RandomizeVASpace), int64(b.RandomizeVASpace), Info, func(x, y string) string {
		return fmt.Sprintf("ASLR setting randomize_va_space differs (%s vs %s): DMTCP restores every mapping at its old address and moves its own restart code out of the way, so this rarely matters", x, y)
	})
	if a.VsyscallPresent != b.VsyscallPresent {
		sa, sb := strconv.FormatBool(a.VsyscallPresent), strconv.FormatBool(b.VsyscallPresent)
		add("vsyscall_present", sa, sb, Info, fmt.Sprintf("legacy [vsyscall] page presence differs (%s vs %s): DMTCP does not save it; only very old static binaries call into it", sa, sb))
	}
	num("pid_max", int64(a.PIDMax), int64(b.PIDMax), Info, func(x, y string) string {
		return fmt.Sprintf("pid_max differs (%s vs %s): DMTCP virtualises pids, so restored processes keep their old pid numbers whatever the node's limit", x, y)
	})
	str("cpu_model_name", a.CPUModelName, b.CPUModelName, Info, func(x, y string) string {
		return fmt.Sprintf("CPU model differs (%s vs %s): only the instruction sets, compared separately, matter for restore", x, y)
	})
	cpuID := func(f Facts) string { return fmt.Sprintf("%d/%d/%d", f.CPUFamily, f.CPUModel, f.CPUStepping) }
	str("cpu_family_model_stepping", cpuID(a), cpuID(b), Info, func(x, y string) string {
		return fmt.Sprintf("CPU family/model/stepping differs (%s vs %s): only the instruction sets, compared separately, matter for restore", x, y)
	})
	osID := func(f Facts) string { return strings.TrimSpace(f.OSID + " " + f.OSVersionID) }
	str("os_release", osID(a), osID(b), Info, func(x, y string) string {
		return fmt.Sprintf("OS release differs (%s vs %s): it matters through glibc, the kernel and DMTCP, which are compared separately", x, y)
	})
	str("hostname", a.Hostname, b.Hostname, Info, func(x, y string) string {
		return fmt.Sprintf("hostname differs (%s vs %s): DMTCP does not depend on it", x, y)
	})

	rank := map[Severity]int{Blocking: 0, Warning: 1, Info: 2}
	slices.SortStableFunc(ds, func(x, y Difference) int { return rank[x.Severity] - rank[y.Severity] })
	return ds
}

// Compatible tells whether a checkpoint taken on a node with checkpointFacts
// can be restored on a node with nodeFacts: true when no difference is
// blocking. It returns every difference, blocking ones first.
func Compatible(checkpointFacts, nodeFacts Facts) (bool, []Difference) {
	ds := Diff(checkpointFacts, nodeFacts)
	for _, d := range ds {
		if d.Severity == Blocking {
			return false, ds
		}
	}
	return true, ds
}

func diffFeatures(a, b Facts, add func(fact, va, vb string, sev Severity, why string)) {
	if a.Arch != b.Arch {
		return // the architecture difference already says it all
	}
	missing, extra := setDiff(a.ISAFeatures, b.ISAFeatures)
	if len(missing) > 0 {
		add("isa_features", strings.Join(missing, ","), "(missing)", Blocking,
			fmt.Sprintf("the node's CPU lacks instruction sets the checkpointed process may use (%s): glibc and other libraries pick code paths such as AVX-512 memcpy once at start-up and keep them after restart, so the restored process dies with SIGILL (illegal instruction)", strings.Join(missing, " ")))
	}
	if len(extra) > 0 {
		add("isa_features", "(absent)", strings.Join(extra, ","), Info,
			fmt.Sprintf("the node's CPU has more instruction sets (%s): a superset is fine for restore", strings.Join(extra, " ")))
	}
}

func diffX86Level(a, b Facts, add func(fact, va, vb string, sev Severity, why string)) {
	if a.X86Level == b.X86Level || a.Arch != b.Arch {
		return
	}
	va, vb := levelName(a.X86Level), levelName(b.X86Level)
	if b.X86Level < a.X86Level {
		add("x86_64_level", va, vb, Blocking, fmt.Sprintf("x86-64 micro-architecture level is lower on the node (%s vs %s): code built for or dispatched to %s uses instructions this CPU lacks (SIGILL after restart)", va, vb, va))
		return
	}
	add("x86_64_level", va, vb, Info, fmt.Sprintf("x86-64 micro-architecture level is higher on the node (%s vs %s): a newer level runs all code of the older one", va, vb))
}

func diffDMTCP(a, b Facts, add func(fact, va, vb string, sev Severity, why string)) {
	switch {
	case a.DMTCPVersion == b.DMTCPVersion:
	case b.DMTCPVersion == "":
		add("dmtcp_version", a.DMTCPVersion, "", Blocking, fmt.Sprintf("DMTCP is not installed on the node (or its version is unknown), the checkpoint was written by DMTCP %s: dmtcp_restart of that version is needed to restore it", a.DMTCPVersion))
	case a.DMTCPVersion == "":
		add("dmtcp_version", "", b.DMTCPVersion, Warning, fmt.Sprintf("the DMTCP version that wrote the checkpoint is unknown (node has %s): images are only restored by the DMTCP version that wrote them", b.DMTCPVersion))
	default:
		add("dmtcp_version", a.DMTCPVersion, b.DMTCPVersion, Blocking, fmt.Sprintf("DMTCP version differs (%s vs %s): checkpoint images are only restored by the DMTCP version that wrote them (image format and restart code change between versions)", a.DMTCPVersion, b.DMTCPVersion))
	}
}

// sizeSeverity makes a size difference blocking only when both sides know
// the size (0 means it could not be read).
func sizeSeverity(a, b int64) Severity {
	if a == 0 || b == 0 {
		return Warning
	}
	return Blocking
}

func knownSeverity(a, b string, sev Severity) Severity {
	if a == "" || b == "" {
		return Warning
	}
	return sev
}

func levelName(l int) string {
	if l == 0 {
		return "none"
	}
	return fmt.Sprintf("v%d", l)
}

func show(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// setDiff returns the items of a missing from b, and of b missing from a.
func setDiff(a, b []string) (missing, extra []string) {
	inA, inB := map[string]bool{}, map[string]bool{}
	for _, x := range a {
		inA[x] = true
	}
	for _, x := range b {
		inB[x] = true
	}
	for _, x := range a {
		if !inB[x] {
			missing = append(missing, x)
		}
	}
	for _, x := range b {
		if !inA[x] {
			extra = append(extra, x)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return missing, extra
}
