package facts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SchemaVersion is the version of the Facts JSON layout written by Collect.
const SchemaVersion = 1

// Facts are the compatibility facts of one node. Field names in JSON are
// stable: other tools (checkpoint manifests, the cache) store them.
type Facts struct {
	SchemaVersion int       `json:"schema_version"`
	CollectedAt   time.Time `json:"collected_at"`
	Hostname      string    `json:"hostname"`

	// Arch is the uname machine, e.g. "x86_64" or "aarch64".
	Arch         string `json:"arch"`
	CPUVendor    string `json:"cpu_vendor"`
	CPUModelName string `json:"cpu_model_name"`
	CPUFamily    int    `json:"cpu_family"`
	CPUModel     int    `json:"cpu_model"`
	CPUStepping  int    `json:"cpu_stepping"`
	CPUCount     int    `json:"cpu_count"`
	// ISAFeatures are the CPU flags that user-space code may use (sorted),
	// the intersection over all CPUs of the node.
	ISAFeatures []string `json:"isa_features"`
	// X86Level is the x86-64 psABI micro-architecture level 1..4, 0 when
	// the node is not x86-64 or lacks the baseline.
	X86Level int `json:"x86_64_level"`
	// FeatureFamilies are the AVX, AVX2, AVX-512* and AMX* flags (sorted).
	FeatureFamilies []string `json:"feature_families"`
	// VirtualAddressBits is from /proc/cpuinfo "address sizes" (x86).
	VirtualAddressBits int `json:"virtual_address_bits"`

	KernelRelease string `json:"kernel_release"`
	// VDSOSize and VVARSize are the sizes in bytes of the [vdso] and of the
	// [vvar] (plus [vvar_vclock]) mappings of a process on this node.
	VDSOSize        int64 `json:"vdso_size"`
	VVARSize        int64 `json:"vvar_size"`
	VsyscallPresent bool  `json:"vsyscall_present"`
	PageSize        int   `json:"page_size"`
	// RandomizeVASpace is kernel.randomize_va_space (-1 when unknown).
	RandomizeVASpace int `json:"randomize_va_space"`
	PIDMax           int `json:"pid_max"`

	GlibcVersion string `json:"glibc_version"`
	DMTCPVersion string `json:"dmtcp_version"`
	DMTCPLaunch  string `json:"dmtcp_launch"`

	OSID        string `json:"os_id"`
	OSVersionID string `json:"os_version_id"`

	// Notes say which facts could not be read and why.
	Notes []string `json:"notes,omitempty"`
}

// Options tune Collect.
type Options struct {
	// Root is prefixed to every /proc, /sys and /etc path ("" means "/").
	// With a root other than "/", facts that are only available through
	// system calls (uname, the running glibc) are read from files in the
	// tree instead.
	Root string
	// DMTCPPrefix is the DMTCP install prefix; dmtcp_launch is looked up
	// in DMTCPPrefix/bin. Empty means: look it up in PATH.
	DMTCPPrefix string
	// Now returns the collection time (nil means time.Now).
	Now func() time.Time
	// CommandTimeout bounds each external command (0 means 10s).
	CommandTimeout time.Duration
}

func (o Options) root() string {
	if o.Root == "" {
		return "/"
	}
	return o.Root
}

func (o Options) realRoot() bool {
	return filepath.Clean(o.root()) == "/"
}

func (o Options) path(p string) string {
	return filepath.Join(o.root(), p)
}

func (o Options) timeout() time.Duration {
	if o.CommandTimeout <= 0 {
		return 10 * time.Second
	}
	return o.CommandTimeout
}

// Collect reads the facts of the node (or of the tree under opts.Root).
// Facts that cannot be read are left empty and explained in Notes; an error
// is returned only when /proc/cpuinfo or the kernel release cannot be read,
// since without them the facts would be useless for a restore decision.
func Collect(opts Options) (Facts, error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	f := Facts{SchemaVersion: SchemaVersion, CollectedAt: now().UTC(), RandomizeVASpace: -1}
	note := func(format string, a ...any) { f.Notes = append(f.Notes, fmt.Sprintf(format, a...)) }

	machine, release, err := uname(opts)
	if err != nil {
		return Facts{}, fmt.Errorf("collect facts: %w", err)
	}
	f.Arch, f.KernelRelease = machine, release

	cpuinfoPath := opts.path("proc/cpuinfo")
	raw, err := os.ReadFile(cpuinfoPath)
	if err != nil {
		return Facts{}, fmt.Errorf("collect facts: read cpu info: %w", err)
	}
	cpu, err := ParseCPUInfo(string(raw))
	if err != nil {
		return Facts{}, fmt.Errorf("collect facts: parse %s: %w", cpuinfoPath, err)
	}
	f.CPUVendor, f.CPUModelName = cpu.Vendor, cpu.ModelName
	f.CPUFamily, f.CPUModel, f.CPUStepping = cpu.Family, cpu.Model, cpu.Stepping
	f.CPUCount = cpu.Count
	f.VirtualAddressBits = cpu.VirtualAddressBits
	f.ISAFeatures = ISAFeatures(f.Arch, cpu.Flags)
	f.X86Level = X86Level(f.Arch, cpu.Flags)
	f.FeatureFamilies = FeatureFamilies(cpu.Flags)
	if n, err := readCPUCount(opts.path("sys/devices/system/cpu/online")); err == nil {
		f.CPUCount = n
	}

	if h, err := readTrimmed(opts.path("proc/sys/kernel/hostname")); err == nil {
		f.Hostname = h
	} else if opts.realRoot() {
		if h, err := os.Hostname(); err == nil {
			f.Hostname = h
		}
	}

	if m, err := readMaps(opts.path("proc/self/maps")); err != nil {
		note("vdso: %v", err)
	} else {
		f.VDSOSize, f.VVARSize, f.VsyscallPresent = m.VDSO, m.VVAR, m.Vsyscall
		if m.VDSO == 0 {
			note("vdso: no [vdso] mapping in %s", opts.path("proc/self/maps"))
		}
	}

	if ps, err := pageSize(opts); err != nil {
		note("page size: %v", err)
	} else {
		f.PageSize = ps
	}

	if v, err := readInt(opts.path("proc/sys/kernel/randomize_va_space")); err != nil {
		note("randomize_va_space: %v", err)
	} else {
		f.RandomizeVASpace = v
	}
	if v, err := readInt(opts.path("proc/sys/kernel/pid_max")); err != nil {
		note("pid_max: %v", err)
	} else {
		f.PIDMax = v
	}

	if v, err := glibcVersion(opts); err != nil {
		note("glibc: %v", err)
	} else {
		f.GlibcVersion = v
	}

	launch, v, err := dmtcpVersion(opts)
	f.DMTCPLaunch = launch
	if err != nil {
		note("dmtcp: %v", err)
	} else {
		f.DMTCPVersion = v
	}

	if osr, err := readOSRelease(opts); err != nil {
		note("os-release: %v", err)
	} else {
		f.OSID, f.OSVersionID = osr["ID"], osr["VERSION_ID"]
	}
	return f, nil
}

func readTrimmed(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func readInt(path string) (int, error) {
	s, err := readTrimmed(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return n, nil
}

// readCPUCount counts the CPUs in a list such as "0-3,8,10-11".
func readCPUCount(path string) (int, error) {
	s, err := readTrimmed(path)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 0, fmt.Errorf("parse %s: %w", path, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return 0, fmt.Errorf("parse %s: %w", path, err)
			}
		}
		if b < a {
			return 0, fmt.Errorf("parse %s: bad range %q", path, part)
		}
		n += b - a + 1
	}
	return n, nil
}

// Decode reads one Facts JSON object. It also accepts a checkpoint manifest
// whose top-level "node_facts" object holds the facts.
func Decode(r io.Reader) (Facts, error) {
	var probe struct {
		NodeFacts *json.RawMessage `json:"node_facts"`
		Arch      *string          `json:"arch"`
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return Facts{}, fmt.Errorf("read facts: %w", err)
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return Facts{}, fmt.Errorf("decode facts JSON: %w", err)
	}
	if probe.NodeFacts != nil {
		raw = *probe.NodeFacts
	} else if probe.Arch == nil {
		return Facts{}, errors.New(`decode facts JSON: neither a facts object (with "arch") nor a manifest (with "node_facts")`)
	}
	var f Facts
	if err := json.Unmarshal(raw, &f); err != nil {
		return Facts{}, fmt.Errorf("decode facts JSON: %w", err)
	}
	if f.Arch == "" {
		return Facts{}, errors.New(`decode facts JSON: "arch" is empty`)
	}
	return f, nil
}

// ReadFile reads a Facts JSON file (or a manifest with "node_facts").
func ReadFile(path string) (Facts, error) {
	fh, err := os.Open(path)
	if err != nil {
		return Facts{}, fmt.Errorf("read facts: %w", err)
	}
	defer fh.Close()
	f, err := Decode(fh)
	if err != nil {
		return Facts{}, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}
