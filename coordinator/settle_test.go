package coordinator

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeProc is one process of a fake /proc.
type fakeProc struct {
	pid      int
	threads  int
	exe      string
	children []int
	dmtcp    bool
	ppid     int
	cmdline  string
	age      time.Duration // 0: started an hour ago
	state    byte          // 0: S (sleeping)
}

func writeProc(t *testing.T, root string, p fakeProc) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(p.pid))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "task", strconv.Itoa(p.pid)), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cmdline"), []byte(p.cmdline), 0o644))
	age := p.age
	if age == 0 {
		age = time.Hour
	}
	// uptime 2 h; the start time in clock ticks after boot, behind a command name with a
	// space and a parenthesis in it.
	require.NoError(t, os.WriteFile(filepath.Join(root, "uptime"), []byte("7200.00 14000.00\n"), 0o644))
	start := (2*time.Hour - age) / (time.Second / clockTicks)
	state := p.state
	if state == 0 {
		state = 'S'
	}
	stat := fmt.Sprintf("%d (py (x) 3) %c %d 1 1 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 %d 0 %d 1000 10\n", p.pid, state, p.ppid, p.threads, start)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644))
	if p.exe != "" {
		require.NoError(t, os.Symlink(p.exe, filepath.Join(dir, "exe")))
	}
	kids := ""
	for _, c := range p.children {
		kids += strconv.Itoa(c) + " "
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "task", strconv.Itoa(p.pid), "children"), []byte(kids), 0o644))
	maps := "55d0 r-xp /usr/bin/x\n"
	if p.dmtcp {
		maps += "7f00 r-xp /opt/dmtcp/lib/dmtcp/libdmtcp.so\n"
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "maps"), []byte(maps), 0o644))
}

func TestStarting(t *testing.T) {
	driver := Worker{Prog: "python3.11", VirtPID: 40000, RealPID: 100, Host: "n1"}
	worker := Worker{Prog: "python3.11", VirtPID: 41000, RealPID: 101, Host: "n1"}
	for _, tc := range []struct {
		name  string
		procs []fakeProc
		ws    []Worker
		want  string
	}{
		{"every process up", []fakeProc{
			{pid: 100, threads: 2, exe: "/usr/bin/python3.11", children: []int{101}, dmtcp: true},
			{pid: 101, threads: 2, exe: "/usr/bin/python3.11", dmtcp: true},
		}, []Worker{driver, worker}, ""},
		{"just exec'd: no checkpoint thread yet", []fakeProc{
			{pid: 100, threads: 2, exe: "/usr/bin/python3.11", children: []int{101}, dmtcp: true},
			{pid: 101, threads: 1, exe: "/usr/bin/python3.11", dmtcp: true},
		}, []Worker{driver, worker}, "python3.11 (pid 101) has no checkpoint thread yet"},
		{"exec'd, new image not registered", []fakeProc{
			{pid: 100, threads: 2, exe: "/usr/bin/bash", dmtcp: true},
		}, []Worker{{Prog: "python3.11", RealPID: 100, Host: "n1"}}, "pid 100 runs bash, registered as python3.11: it has just exec'd"},
		{"a subprocess started 50 ms ago", []fakeProc{
			{pid: 100, threads: 2, exe: "/usr/bin/python3.11", children: []int{101}, dmtcp: true, age: time.Hour},
			{pid: 101, threads: 2, exe: "/usr/bin/python3.11", dmtcp: true, ppid: 100, age: 50 * time.Millisecond},
		}, []Worker{driver, worker}, "python3.11 (pid 101) started 50ms ago"},
		{"a subprocess started 2 s ago", []fakeProc{
			{pid: 100, threads: 2, exe: "/usr/bin/python3.11", children: []int{101}, dmtcp: true, age: time.Hour},
			{pid: 101, threads: 2, exe: "/usr/bin/python3.11", dmtcp: true, ppid: 100, age: 2 * time.Second},
		}, []Worker{driver, worker}, ""},
		{"restored just now", []fakeProc{
			{pid: 100, threads: 2, exe: "/opt/dmtcp/bin/mtcp_restart", dmtcp: true, age: 50 * time.Millisecond},
		}, []Worker{driver}, ""},
		{"forked pool worker that never exec'd", []fakeProc{
			{pid: 100, threads: 2, exe: "/usr/bin/python3.11", children: []int{101}, dmtcp: true, cmdline: "python3\x00driver.py\x00"},
			{pid: 101, threads: 2, exe: "/usr/bin/python3.11", dmtcp: true, ppid: 100, cmdline: "python3\x00driver.py\x00"},
		}, []Worker{driver, {Prog: "python3.11_(forked)", RealPID: 101, Host: "n1"}}, ""},
		{"forked child that exec'd the same program, not registered again", []fakeProc{
			{pid: 100, threads: 2, exe: "/usr/bin/python3.11", children: []int{101}, dmtcp: true, cmdline: "python3\x00driver.py\x00"},
			{pid: 101, threads: 2, exe: "/usr/bin/python3.11", dmtcp: true, ppid: 100, cmdline: "/usr/bin/python3\x00-c\x00print(3)\x00"},
		}, []Worker{driver, {Prog: "python3.11_(forked)", RealPID: 101, Host: "n1"}}, "pid 101 runs python3.11, registered as python3.11_(forked): it has just exec'd"},
		{"forked child not registered", []fakeProc{
			{pid: 100, threads: 2, exe: "/usr/bin/python3.11", children: []int{102}, dmtcp: true},
			{pid: 102, threads: 2, exe: "/usr/bin/python3.11", dmtcp: true},
		}, []Worker{driver}, "pid 102, a child of python3.11 (pid 100), is not registered yet: it has just been forked"},
		{"a child ended, its parent has not reaped it", []fakeProc{
			{pid: 100, threads: 2, exe: "/usr/bin/gcc", children: []int{104}, dmtcp: true},
			{pid: 104, threads: 1, state: 'Z', ppid: 100},
		}, []Worker{{Prog: "gcc", RealPID: 100, Host: "n1"}, {Prog: "cc1", RealPID: 104, Host: "n1"}}, "pid 104, a child of gcc (pid 100), has ended and is not reaped yet"},
		{"a worker ended, its parent has not reaped it", []fakeProc{
			{pid: 100, threads: 1, state: 'Z', exe: "/usr/bin/python3.11"},
		}, []Worker{driver}, "python3.11 (pid 100) has ended and is not reaped yet"},
		{"a child outside DMTCP ended, not reaped", []fakeProc{
			{pid: 100, threads: 2, exe: "/usr/bin/bash", children: []int{103}, dmtcp: true},
			{pid: 103, threads: 1, state: 'Z', ppid: 100},
		}, []Worker{{Prog: "bash", RealPID: 100, Host: "n1"}}, "pid 103, a child of bash (pid 100), has ended and is not reaped yet"},
		{"child outside DMTCP (a static program) does not count", []fakeProc{
			{pid: 100, threads: 2, exe: "/usr/bin/bash", children: []int{103}, dmtcp: true},
			{pid: 103, threads: 1, exe: "/usr/bin/dmtcpctl"},
		}, []Worker{{Prog: "bash", RealPID: 100, Host: "n1"}}, ""},
		{"restored process runs from mtcp_restart", []fakeProc{
			{pid: 100, threads: 2, exe: "/opt/dmtcp/bin/mtcp_restart", dmtcp: true},
		}, []Worker{driver}, ""},
		{"gone process and other hosts are skipped", []fakeProc{}, []Worker{driver, {Prog: "x", RealPID: 5, Host: "n2"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for _, p := range tc.procs {
				writeProc(t, root, p)
			}
			assert.Equal(t, tc.want, Starting(root, "n1", tc.ws))
		})
	}
}
