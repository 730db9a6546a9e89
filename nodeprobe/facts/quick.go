package facts

import "fmt"

// Quick reads the facts that change under a running probe service without it noticing
// soon (a reboot into a new kernel, a glibc upgrade): architecture, kernel release, vDSO
// and vvar sizes and glibc version, without running any program. Readers of a cached fact
// set (the agent) compare them with the cache to tell whether it is stale.
func Quick(opts Options) (Facts, error) {
	var f Facts
	machine, release, err := uname(opts)
	if err != nil {
		return Facts{}, fmt.Errorf("quick facts: %w", err)
	}
	f.Arch, f.KernelRelease = machine, release
	m, err := readMaps(opts.path("proc/self/maps"))
	if err != nil {
		return Facts{}, fmt.Errorf("quick facts: %w", err)
	}
	f.VDSOSize, f.VVARSize = m.VDSO, m.VVAR
	if f.GlibcVersion, err = glibcVersion(opts); err != nil {
		return Facts{}, fmt.Errorf("quick facts: %w", err)
	}
	return f, nil
}

// StaleAgainst names the first fact of Quick that differs between cached and now, or "".
func StaleAgainst(cached, now Facts) string {
	switch {
	case cached.Arch != now.Arch:
		return fmt.Sprintf("arch %s, now %s", show(cached.Arch), show(now.Arch))
	case cached.KernelRelease != now.KernelRelease:
		return fmt.Sprintf("kernel %s, now %s", show(cached.KernelRelease), show(now.KernelRelease))
	case cached.VDSOSize != now.VDSOSize:
		return fmt.Sprintf("vdso size %d, now %d", cached.VDSOSize, now.VDSOSize)
	case cached.VVARSize != now.VVARSize:
		return fmt.Sprintf("vvar size %d, now %d", cached.VVARSize, now.VVARSize)
	case cached.GlibcVersion != now.GlibcVersion:
		return fmt.Sprintf("glibc %s, now %s", show(cached.GlibcVersion), show(now.GlibcVersion))
	}
	return ""
}
