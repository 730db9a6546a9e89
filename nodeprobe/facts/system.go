package facts

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// uname returns the machine and kernel release. The release comes from
// proc/sys/kernel/osrelease, the machine from proc/sys/kernel/arch when the
// kernel has it; on the real root, uname(2) fills what the files lack.
func uname(opts Options) (machine, release string, err error) {
	release, relErr := readTrimmed(opts.path("proc/sys/kernel/osrelease"))
	machine, _ = readTrimmed(opts.path("proc/sys/kernel/arch"))
	if (relErr != nil || machine == "") && opts.realRoot() {
		var u syscall.Utsname
		if err := syscall.Uname(&u); err != nil {
			return "", "", fmt.Errorf("uname: %w", err)
		}
		if machine == "" {
			machine = utsString(u.Machine[:])
		}
		if relErr != nil {
			release, relErr = utsString(u.Release[:]), nil
		}
	}
	if relErr != nil {
		return "", "", fmt.Errorf("kernel release: %w", relErr)
	}
	if machine == "" {
		return "", "", fmt.Errorf("machine: %s is missing and uname(2) is only used for the real root", opts.path("proc/sys/kernel/arch"))
	}
	return machine, release, nil
}

func utsString[T int8 | uint8](b []T) string {
	var sb strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	return sb.String()
}

// mapsInfo is what readMaps extracts from /proc/self/maps.
type mapsInfo struct {
	VDSO, VVAR int64
	Vsyscall   bool
}

// readMaps sums the sizes of the [vdso] and the [vvar]/[vvar_vclock]
// mappings, the areas DMTCP must re-map at their old addresses on restart.
func readMaps(path string) (mapsInfo, error) {
	fh, err := os.Open(path)
	if err != nil {
		return mapsInfo{}, err
	}
	defer fh.Close()
	return parseMaps(bufio.NewScanner(fh), path)
}

func parseMaps(sc *bufio.Scanner, path string) (mapsInfo, error) {
	var m mapsInfo
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			continue
		}
		name := fields[5]
		if name != "[vdso]" && name != "[vsyscall]" && !strings.HasPrefix(name, "[vvar") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			return mapsInfo{}, fmt.Errorf("parse %s: bad range %q", path, fields[0])
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err := errors.Join(err1, err2); err != nil || end < start {
			return mapsInfo{}, fmt.Errorf("parse %s: bad range %q: %v", path, fields[0], err)
		}
		size := int64(end - start)
		switch {
		case name == "[vdso]":
			m.VDSO += size
		case name == "[vsyscall]":
			m.Vsyscall = true
		default:
			m.VVAR += size
		}
	}
	if err := sc.Err(); err != nil {
		return mapsInfo{}, fmt.Errorf("read %s: %w", path, err)
	}
	return m, nil
}

// pageSize reads the kernel page size from the first KernelPageSize line
// of proc/self/smaps; on the real root it falls back to getpagesize.
func pageSize(opts Options) (int, error) {
	path := opts.path("proc/self/smaps")
	fh, err := os.Open(path)
	if err == nil {
		defer fh.Close()
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			rest, ok := strings.CutPrefix(sc.Text(), "KernelPageSize:")
			if !ok {
				continue
			}
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("parse %s: bad KernelPageSize %q", path, rest)
			}
			kb, err := strconv.Atoi(f[0])
			if err != nil {
				return 0, fmt.Errorf("parse %s: %w", path, err)
			}
			return kb * 1024, nil
		}
		err = sc.Err()
		if err == nil {
			err = fmt.Errorf("%s has no KernelPageSize line", path)
		}
	}
	if opts.realRoot() {
		return os.Getpagesize(), nil
	}
	return 0, err
}

// readOSRelease parses /etc/os-release (or /usr/lib/os-release).
func readOSRelease(opts Options) (map[string]string, error) {
	var firstErr error
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		b, err := os.ReadFile(opts.path(p))
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		return parseOSRelease(string(b)), nil
	}
	return nil, firstErr
}

func parseOSRelease(text string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, `'"`)
		}
		out[k] = v
	}
	return out
}
