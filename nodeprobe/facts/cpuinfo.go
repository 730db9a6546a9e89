package facts

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// CPUInfo is what ParseCPUInfo extracts from /proc/cpuinfo.
type CPUInfo struct {
	Vendor             string
	ModelName          string
	Family             int
	Model              int
	Stepping           int
	Count              int
	VirtualAddressBits int
	// Flags is the intersection of the flags of all CPUs, sorted.
	Flags []string
}

// armImplementers maps the arm64 "CPU implementer" code to a vendor name.
var armImplementers = map[int64]string{
	0x41: "ARM", 0x42: "Broadcom", 0x43: "Cavium", 0x46: "Fujitsu",
	0x48: "HiSilicon", 0x4e: "NVIDIA", 0x50: "APM", 0x51: "Qualcomm",
	0x53: "Samsung", 0x61: "Apple", 0x6d: "Microsoft", 0xc0: "Ampere",
}

// ParseCPUInfo parses the text of /proc/cpuinfo (x86 and arm64 layouts).
func ParseCPUInfo(text string) (CPUInfo, error) {
	var info CPUInfo
	var flags map[string]bool
	for _, block := range strings.Split(text, "\n\n") {
		kv := map[string]string{}
		for _, line := range strings.Split(block, "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
		list, x86 := kv["flags"]
		if !x86 {
			var ok bool
			if list, ok = kv["Features"]; !ok {
				continue
			}
		}
		info.Count++
		cpuFlags := map[string]bool{}
		for _, fl := range strings.Fields(list) {
			cpuFlags[fl] = true
		}
		if flags == nil {
			flags = cpuFlags
		} else {
			for fl := range flags {
				if !cpuFlags[fl] {
					delete(flags, fl)
				}
			}
		}
		if info.Count > 1 {
			continue
		}
		var err error
		if x86 {
			err = info.fillX86(kv)
		} else {
			err = info.fillARM(kv)
		}
		if err != nil {
			return CPUInfo{}, err
		}
	}
	if info.Count == 0 {
		return CPUInfo{}, errors.New(`no CPU with a "flags" or "Features" line`)
	}
	for fl := range flags {
		info.Flags = append(info.Flags, fl)
	}
	slices.Sort(info.Flags)
	return info, nil
}

func (info *CPUInfo) fillX86(kv map[string]string) error {
	info.Vendor = kv["vendor_id"]
	info.ModelName = kv["model name"]
	var err error
	if info.Family, err = atoiField(kv, "cpu family", 10); err != nil {
		return err
	}
	if info.Model, err = atoiField(kv, "model", 10); err != nil {
		return err
	}
	if info.Stepping, err = atoiField(kv, "stepping", 10); err != nil {
		return err
	}
	// "address sizes : 46 bits physical, 48 bits virtual"
	if s, ok := kv["address sizes"]; ok {
		for _, part := range strings.Split(s, ",") {
			f := strings.Fields(part)
			if len(f) == 3 && f[2] == "virtual" {
				if n, err := strconv.Atoi(f[0]); err == nil {
					info.VirtualAddressBits = n
				}
			}
		}
	}
	return nil
}

func (info *CPUInfo) fillARM(kv map[string]string) error {
	impl, err := atoiField(kv, "CPU implementer", 0)
	if err != nil {
		return err
	}
	if name, ok := armImplementers[int64(impl)]; ok {
		info.Vendor = name
	} else if impl != 0 {
		info.Vendor = fmt.Sprintf("implementer 0x%x", impl)
	}
	if info.Family, err = atoiField(kv, "CPU architecture", 10); err != nil {
		return err
	}
	if info.Model, err = atoiField(kv, "CPU part", 0); err != nil {
		return err
	}
	if info.Stepping, err = atoiField(kv, "CPU revision", 10); err != nil {
		return err
	}
	info.ModelName = kv["model name"]
	if info.ModelName == "" && kv["CPU part"] != "" {
		info.ModelName = fmt.Sprintf("%s part %s", info.Vendor, kv["CPU part"])
	}
	return nil
}

// atoiField parses kv[key] as an integer; a missing key gives 0.
func atoiField(kv map[string]string, key string, base int) (int, error) {
	s, ok := kv[key]
	if !ok || s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, base, 64)
	if err != nil {
		return 0, fmt.Errorf("cpuinfo field %q: %w", key, err)
	}
	return int(n), nil
}

// x86ISA lists the /proc/cpuinfo flags (Linux names) of instructions that
// user-space code can execute, so that a restored process may depend on
// them. Kernel-only, bug, power and virtualisation flags are left out.
var x86ISA = map[string]bool{
	"fpu": true, "cx8": true, "cmov": true, "mmx": true, "fxsr": true,
	"sse": true, "sse2": true, "syscall": true, "lm": true, "rdtscp": true,
	"pni": true, "pclmulqdq": true, "ssse3": true, "fma": true, "cx16": true,
	"sse4_1": true, "sse4_2": true, "movbe": true, "popcnt": true, "aes": true,
	"xsave": true, "f16c": true, "rdrand": true, "lahf_lm": true, "abm": true,
	"sse4a": true, "misalignsse": true, "3dnowprefetch": true, "xop": true,
	"fma4": true, "tbm": true, "mmxext": true, "3dnow": true, "3dnowext": true,
	"bmi1": true, "bmi2": true, "hle": true, "rtm": true, "adx": true,
	"rdseed": true, "clflushopt": true, "clwb": true, "sha_ni": true,
	"xsaveopt": true, "xsavec": true, "fsgsbase": true, "rdpid": true,
	"vaes": true, "vpclmulqdq": true, "gfni": true, "movdiri": true,
	"movdir64b": true, "serialize": true, "waitpkg": true, "cldemote": true,
	"enqcmd": true, "clzero": true, "mwaitx": true, "ospke": true,
	"sha512": true, "sm3": true, "sm4": true, "cmpccxadd": true,
	"prefetchi": true, "user_shstk": true, "lam": true, "uintr": true,
}

// ISAFeatures returns the flags that compiled user-space code may use: on
// x86 the known instruction-set flags, on other architectures all hwcaps.
func ISAFeatures(arch string, flags []string) []string {
	out := []string{}
	for _, fl := range flags {
		if !isX86(arch) || x86ISA[fl] || isFamilyFlag(fl) {
			out = append(out, fl)
		}
	}
	slices.Sort(out)
	return out
}

func isX86(arch string) bool {
	switch arch {
	case "x86_64", "amd64", "i386", "i486", "i586", "i686":
		return true
	}
	return false
}

func isFamilyFlag(fl string) bool {
	return strings.HasPrefix(fl, "avx") || strings.HasPrefix(fl, "amx")
}

// FeatureFamilies returns the AVX, AVX2, AVX-512*, AVX-VNNI and AMX* flags,
// sorted: the families whose absence on another CPU most often kills a
// restored process with SIGILL.
func FeatureFamilies(flags []string) []string {
	out := []string{}
	for _, fl := range flags {
		if isFamilyFlag(fl) {
			out = append(out, fl)
		}
	}
	slices.Sort(out)
	return out
}

// x86Levels are the x86-64 psABI micro-architecture levels, in Linux
// /proc/cpuinfo names: pni is SSE3, abm includes LZCNT, and xsave stands
// for OSXSAVE (the kernel shows xsave only when it enabled it).
var x86Levels = [][]string{
	1: {"cmov", "cx8", "fpu", "fxsr", "mmx", "syscall", "sse", "sse2"},
	2: {"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"},
	3: {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"},
	4: {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"},
}

// X86Level returns the highest x86-64 level (1..4) whose flags, and those of
// every lower level, are all present; 0 when arch is not x86_64 or the
// baseline is incomplete.
func X86Level(arch string, flags []string) int {
	if arch != "x86_64" && arch != "amd64" {
		return 0
	}
	have := map[string]bool{}
	for _, fl := range flags {
		have[fl] = true
	}
	level := 0
	for l := 1; l < len(x86Levels); l++ {
		for _, need := range x86Levels[l] {
			if !have[need] {
				return level
			}
		}
		level = l
	}
	return level
}

// X86LevelMissing returns the flags missing for the given level (and the
// levels below it).
func X86LevelMissing(level int, flags []string) []string {
	have := map[string]bool{}
	for _, fl := range flags {
		have[fl] = true
	}
	var missing []string
	for l := 1; l <= level && l < len(x86Levels); l++ {
		for _, need := range x86Levels[l] {
			if !have[need] {
				missing = append(missing, need)
			}
		}
	}
	return missing
}
