package coordinator

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/slurm-dmtcp/slurm-dmtcp/proto/procstat"
)

// A checkpoint that DMTCP 5.0 begins while a process of the computation is starting (a
// child between fork and its registration with the coordinator, or a program between exec
// and the start of its checkpoint thread) leaves that process out or saves it half made: its
// image is missing from the checkpoint, or the restored process crashes, and its parent
// reads an empty pipe after the restore. One that begins while a process has ended and its
// parent has not reaped it yet (a zombie) has no image of it either: the restored parent
// then waits for a child it no longer has (ECHILD; gcc under make -j2: "failed to get exit
// status: No child processes"). Settle waits, a bounded time, for a moment when no process
// of this node is starting or ending.

// settlePoll is how often Settle looks again while a process is starting.
const settlePoll = 10 * time.Millisecond

// Starting says why a process of the computation on this host is not ready to be
// checkpointed, or "" when none is: a worker or a worker's child that has ended and is not
// reaped yet, a worker without its checkpoint thread yet (one thread: it has just exec'd), a
// worker that started less than youngAge ago, a worker whose program is not the one it
// registered (it exec'd and its new image has not told the coordinator yet), or a child of
// a worker that runs under DMTCP but is not registered yet (it has just been forked). procRoot is "/proc" but for
// tests; host is this host's name as the coordinator lists it.
func Starting(procRoot, host string, ws []Worker) string {
	known := map[int]bool{}
	for _, w := range ws {
		if w.Host == host {
			known[w.RealPID] = true
		}
	}
	for _, w := range ws {
		if w.Host != host || w.RealPID <= 1 {
			continue
		}
		dir := filepath.Join(procRoot, strconv.Itoa(w.RealPID))
		st, err := procstat.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue // gone: DMTCP's checkpoint does without it
		}
		if st.Gone() {
			return fmt.Sprintf("%s (pid %d) has ended and is not reaped yet", w.Prog, w.RealPID)
		}
		if st.Threads < 2 {
			return fmt.Sprintf("%s (pid %d) has no checkpoint thread yet", w.Prog, w.RealPID)
		}
		if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
			// A restored process runs from DMTCP's mtcp_restart.
			name := strings.TrimSuffix(filepath.Base(exe), " (deleted)")
			if age, ok := procAge(procRoot, st); ok && age < youngAge && name != "mtcp_restart" {
				return fmt.Sprintf("%s (pid %d) started %s ago", w.Prog, w.RealPID, age)
			}
			if name != w.Prog && w.Prog != "" && name != "mtcp_restart" && !forkedOnly(procRoot, dir, st.PPid, name, w.Prog) {
				return fmt.Sprintf("pid %d runs %s, registered as %s: it has just exec'd", w.RealPID, name, w.Prog)
			}
		}
		for _, c := range procChildren(dir) {
			cdir := filepath.Join(procRoot, strconv.Itoa(c))
			if cst, err := procstat.ReadFile(filepath.Join(cdir, "stat")); err == nil && cst.Gone() {
				return fmt.Sprintf("pid %d, a child of %s (pid %d), has ended and is not reaped yet", c, w.Prog, w.RealPID)
			}
			if !known[c] && underDMTCP(cdir) {
				return fmt.Sprintf("pid %d, a child of %s (pid %d), is not registered yet: it has just been forked", c, w.Prog, w.RealPID)
			}
		}
	}
	return ""
}

// youngAge: a program checkpointed this soon after its start (a subprocess of a Python
// driver, still loading its interpreter) was restored by DMTCP 5.0 only to die of SIGSEGV.
// Most such programs end within it; a process that lives on is checkpointed once it is
// this old. Longer would put checkpoints of a loop that runs short programs back to back
// (a shell's `sleep 0.2`) at the moment one ends, and DMTCP 5.0 then leaves the exiting
// process's image out while its parent still waits for it.
const youngAge = 100 * time.Millisecond

// clockTicks is the kernel's USER_HZ, the unit of a process's start time in
// /proc/<pid>/stat: 100 on every architecture Linux runs DMTCP on.
const clockTicks = 100

// procAge is how long ago the process whose stat is st started (fork time), from the
// system's uptime; false when that cannot be read.
func procAge(procRoot string, st procstat.Stat) (time.Duration, bool) {
	up, err := os.ReadFile(filepath.Join(procRoot, "uptime"))
	if err != nil {
		return 0, false
	}
	uf := strings.Fields(string(up))
	if len(uf) == 0 {
		return 0, false
	}
	secs, err := strconv.ParseFloat(uf[0], 64)
	if err != nil {
		return 0, false
	}
	age := time.Duration(secs*float64(time.Second)) - time.Duration(st.StartTicks)*time.Second/clockTicks
	if age < 0 {
		age = 0
	}
	return age, true
}

// Settle waits until no process of the computation on this host is starting (see
// Starting), at most max. It returns "" when none is, else why the wait ended without it.
func (c *Coordinator) Settle(ctx context.Context, max time.Duration) string {
	host, _ := os.Hostname()
	deadline := time.Now().Add(max)
	for {
		ws, err := c.List(ctx)
		if err != nil {
			return fmt.Sprintf("the list of processes failed: %v", err)
		}
		why := Starting("/proc", host, ws)
		if why == "" || !time.Now().Before(deadline) {
			return why
		}
		select {
		case <-ctx.Done():
			return why
		case <-time.After(settlePoll):
		}
	}
}

// forkedOnly says whether the process in dir, child of ppid, registered as prog and running
// the program name, is a child that was forked and has not exec'd (a pool worker): DMTCP registers
// such a child as "<name>_(forked)" for good, and it runs its parent's command line. A
// child that exec'd the same program again has a command line of its own until its new
// image registers under its program's name.
func forkedOnly(procRoot, dir string, ppid int, name, prog string) bool {
	if prog != name+"_(forked)" {
		return false
	}
	if ppid <= 1 {
		return false
	}
	own, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil {
		return false
	}
	parent, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(ppid), "cmdline"))
	return err == nil && bytes.Equal(own, parent)
}

// procChildren is every child of every thread of the process in dir.
func procChildren(dir string) []int {
	var out []int
	tasks, _ := filepath.Glob(filepath.Join(dir, "task", "*", "children"))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// underDMTCP says whether the process in dir has DMTCP's library mapped (a forked child of
// a DMTCP process has; a static program it exec'd, or a zombie, has not).
func underDMTCP(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "maps"))
	return err == nil && bytes.Contains(b, []byte("/libdmtcp.so"))
}
