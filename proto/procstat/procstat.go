// Package procstat reads the kernel's /proc/<pid>/stat line: the fields the agent, the
// launcher and the coordinator package need (state, parent, threads, start time).
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Stat is what a process's stat line says.
type Stat struct {
	State byte // R, S, D, Z (zombie), X (dead), ...
	PPid  int
	// Threads is how many threads the process has.
	Threads int
	// StartTicks is when the process started, in clock ticks (USER_HZ) after boot.
	StartTicks uint64
}

// Gone says whether the process has ended (a zombie or dead).
func (s Stat) Gone() bool { return s.State == 'Z' || s.State == 'X' }

// Parse reads a stat line: "pid (comm) state ppid ..." where comm may hold spaces and
// parentheses, so the fields are counted from its last ')'.
func Parse(b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("stat %q: no ')' after the command name", firstBytes(b))
	}
	f := strings.Fields(string(b[i+1:]))
	// state is field 3 of the line, ppid 4, num_threads 20, starttime 22: f[0], f[1],
	// f[17], f[19].
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("stat %q: %d fields after the command name, want 20 or more", firstBytes(b), len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return Stat{}, fmt.Errorf("stat: ppid %q: %w", f[1], err)
	}
	threads, err := strconv.Atoi(f[17])
	if err != nil {
		return Stat{}, fmt.Errorf("stat: num_threads %q: %w", f[17], err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("stat: starttime %q: %w", f[19], err)
	}
	return Stat{State: f[0][0], PPid: ppid, Threads: threads, StartTicks: start}, nil
}

// Read reads and parses <procRoot>/<pid>/stat (procRoot is "/proc" but in tests).
func Read(procRoot string, pid int) (Stat, error) {
	return ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
}

// ReadFile reads and parses the stat file at path.
func ReadFile(path string) (Stat, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Stat{}, err
	}
	st, err := Parse(b)
	if err != nil {
		return Stat{}, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

func firstBytes(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}
