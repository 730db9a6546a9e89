//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sigProbe reports what a program sees of SIGTERM through the API, and how SIGTERM behaves
// for it: its disposition and mask at start, its own handler called for its own SIGTERM,
// ignore, one-shot handler, what a child it execs starts with (ignored, blocked, after a
// handler, after a failed exec), and at last the default disposition ends it (143).
const sigProbe = `#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got, code, mine;

static void on(int s, siginfo_t *si, void *uc) { (void)s; (void)uc; got++; code = si->si_code; mine = si->si_uid == getuid(); }
static void plain(int s) { (void)s; got++; }

static const char *disp(void) {
  struct sigaction a;
  sigaction(SIGTERM, NULL, &a);
  if (a.sa_handler == SIG_DFL) return "default";
  if (a.sa_handler == SIG_IGN) return "ignore";
  return (a.sa_flags & SA_SIGINFO) ? "handler(siginfo)" : "handler";
}

static int blocked(void) {
  sigset_t m;
  sigprocmask(SIG_BLOCK, NULL, &m);
  return sigismember(&m, SIGTERM);
}

static void view(const char *who) {
  char line[256];
  FILE *f = fopen("/proc/self/status", "r");
  printf("%s: disposition=%s blocked=%d", who, disp(), blocked());
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "SigIgn:", 7) || !strncmp(line, "SigBlk:", 7)) {
      line[strcspn(line, "\n")] = 0;
      printf(" %s", line);
    }
  if (f) fclose(f);
  printf("\n");
  fflush(stdout);
}

static void wait_got(int n) {
  for (int i = 0; i < 500 && got < n; i++) usleep(10000);
}

/* A child that sets SIGTERM up with setup(), then execs "probe view WHO" (or a missing
 * program, then views itself). */
static void child(const char *self, const char *who, void (*setup)(void), int fail) {
  fflush(stdout);
  pid_t p = fork();
  if (p == 0) {
    setup();
    if (fail) {
      execl("/nonexistent/program", "x", (char *)NULL);
      view(who);
      _exit(0);
    }
    execl(self, self, "view", who, (char *)NULL);
    _exit(126);
  }
  waitpid(p, NULL, 0);
}

static void ign(void) { signal(SIGTERM, SIG_IGN); }
static void blk(void) { sigset_t s; sigemptyset(&s); sigaddset(&s, SIGTERM); sigprocmask(SIG_BLOCK, &s, NULL); }
static void hnd(void) { signal(SIGTERM, plain); }

int main(int argc, char **argv) {
  struct sigaction a;

  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc > 2 && !strcmp(argv[1], "view")) {
    view(argv[2]);
    return 0;
  }
  view("start");
  memset(&a, 0, sizeof a);
  a.sa_sigaction = on;
  a.sa_flags = SA_SIGINFO | SA_RESTART;
  sigaction(SIGTERM, &a, NULL);
  printf("set: disposition=%s\n", disp());
  kill(getpid(), SIGTERM);
  wait_got(1);
  printf("own SIGTERM: handler calls=%d from me=%d SI_USER=%d\n", (int)got, (int)mine, code == SI_USER);
  printf("signal(SIG_IGN) returned the handler=%d\n", signal(SIGTERM, SIG_IGN) == (void (*)(int))on);
  raise(SIGTERM);
  printf("ignored: still here, disposition=%s\n", disp());
  memset(&a, 0, sizeof a);
  a.sa_handler = plain;
  a.sa_flags = SA_RESETHAND;
  sigaction(SIGTERM, &a, NULL);
  got = 0;
  raise(SIGTERM);
  wait_got(1);
  printf("one-shot handler: calls=%d then disposition=%s\n", (int)got, disp());
  child(argv[0], "exec after SIG_IGN", ign, 0);
  child(argv[0], "exec with SIGTERM blocked", blk, 0);
  child(argv[0], "exec after a handler", hnd, 0);
  child(argv[0], "failed exec after a handler", hnd, 1);
  child(argv[0], "failed exec", ign, 1);
  view("end");
  signal(SIGTERM, SIG_DFL);
  kill(getpid(), SIGTERM);
  sleep(5);
  printf("not reached\n");
  return 0;
}
`

// buildSigProbe compiles sigProbe into dir (readable by the test user).
func buildSigProbe(t *testing.T, dir string) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("SKIP: needs a C compiler (cc) to build the signal probe")
	}
	src := filepath.Join(dir, "sigprobe.c")
	require.NoError(t, os.WriteFile(src, []byte(sigProbe), 0o644))
	bin := filepath.Join(dir, "sigprobe")
	out, err := exec.Command(cc, "-O1", "-Wall", "-o", bin, src).CombinedOutput()
	require.NoError(t, err, "cc: %s", out)
	return bin
}

// Inside a --dmtcp step, SIGTERM sent by the user's own programs works as without DMTCP:
// a shell's kill, timeout, Python's Popen.terminate() (also at once after the start, while
// the child is still being exec'd), with the same output and at once.
func TestSignalsUserSigtermAsWithoutDMTCP(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	dir := workdir(t)
	for _, tc := range []struct{ name, cmd, want string }{
		{"shell kill", `sleep 5 & kill $!; wait $!; echo $?`, "143\n"},
		{"timeout", `timeout 1 sleep 10; echo $?`, "124\n"},
		{"Popen.terminate", `python3 -c 'import subprocess, time; p = subprocess.Popen(["sleep", "10"]); time.sleep(0.5); p.terminate(); print(p.wait())'`, "-15\n"},
		{"Popen.terminate at once", `python3 -c 'import subprocess; p = subprocess.Popen(["sleep", "10"]); p.terminate(); print(p.wait())'`, "-15\n"},
		{"the shell itself", `kill $$; echo not reached`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plain := c.run(t, testUser, dir, nil, "srun", "bash", "-c", tc.cmd)
			start := time.Now()
			r := c.run(t, testUser, dir, nil, "srun", "--dmtcp", "bash", "-c", tc.cmd)
			took := time.Since(start)
			assert.Equal(t, tc.want, plain.stdout, "plain srun: %s", plain.stderr)
			assert.Equal(t, plain.stdout, r.stdout, "srun --dmtcp: %s", r.stderr)
			assert.Equal(t, plain.code, r.code, "exit code of srun --dmtcp as of plain srun: %s", r.stderr)
			assert.Less(t, took, 4*time.Second, "the SIGTERM ended its target at once")
		})
	}
}

// A program under --dmtcp sees, and gets, the SIGTERM disposition and mask it sets, as
// without DMTCP: the same report line for line, /proc's SigIgn and SigBlk included.
func TestSignalsProgramSeesItsOwnDisposition(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	dir := workdir(t)
	probe := buildSigProbe(t, dir)
	cmd := probe + "; echo rc=$?"
	plain := c.run(t, testUser, dir, nil, "srun", "bash", "-c", cmd)
	require.Contains(t, plain.stdout, "rc=143", "the probe without DMTCP: %s", plain.stderr)
	r := c.run(t, testUser, dir, nil, "srun", "--dmtcp", "bash", "-c", cmd)
	assert.Equal(t, plain.stdout, r.stdout, "srun --dmtcp: %s", r.stderr)
	// The start line is the one plain srun printed (above); whatever else the cluster's
	// daemons ignore or block, SIGTERM is neither.
	assert.Contains(t, r.stdout, "start: disposition=default blocked=0 ")
	start := startMasks(t, r.stdout)
	assert.Zero(t, start["SigIgn"]&(1<<14), "SIGTERM not ignored at the start: %v", start)
	assert.Zero(t, start["SigBlk"]&(1<<14), "SIGTERM not blocked at the start: %v", start)
	assert.Contains(t, r.stdout, "own SIGTERM: handler calls=1 from me=1 SI_USER=1\n")
	assert.Contains(t, r.stdout, "exec after SIG_IGN: disposition=ignore blocked=0")
	assert.Contains(t, r.stdout, "exec with SIGTERM blocked: disposition=default blocked=1")
	assert.Contains(t, r.stdout, "exec after a handler: disposition=default blocked=0")
	assert.Contains(t, r.stdout, "failed exec after a handler: disposition=handler blocked=0")
	assert.NotContains(t, r.stdout, "not reached")
}

// startMasks reads the SigBlk and SigIgn masks of the probe's "start:" line.
func startMasks(t *testing.T, out string) map[string]uint64 {
	t.Helper()
	masks := map[string]uint64{}
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "start: ") {
			continue
		}
		for _, key := range []string{"SigBlk", "SigIgn"} {
			i := strings.Index(line, key+":\t")
			require.GreaterOrEqual(t, i, 0, "no %s in %q", key, line)
			hex := strings.Fields(line[i+len(key)+2:])[0]
			v, err := strconv.ParseUint(hex, 16, 64)
			require.NoError(t, err, "%s in %q", key, line)
			masks[key] = v
		}
		return masks
	}
	require.Fail(t, "no start line", out)
	return nil
}

// A SIGTERM from root (Slurm's) does not end a program under --dmtcp, whatever the program's
// own disposition; the same program still dies of its user's SIGTERM.
func TestSignalsRootSigtermIsDropped(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	dir := workdir(t)
	script := writeScript(t, dir, "job.sh", `#!/bin/bash
`+sleeper+`
echo started > started
while [ ! -e go ]; do sleep 0.1; done
kill $s && echo "user kill sent"
wait $s; echo "sleeper rc=$?"
`)
	id := c.sbatch(t, dir, "--dmtcp", "-o", dir+"/out", "-e", dir+"/err", script)
	waitFile(t, dir+"/started", "started", 60*time.Second)
	pid := findSleeper(t, dir)
	require.NoError(t, syscall.Kill(pid, syscall.SIGTERM), "root's SIGTERM to %d", pid)
	time.Sleep(time.Second)
	require.True(t, running(pid), "the program died of root's SIGTERM")
	st := sigStatus(t, pid)
	assert.True(t, st["SigCgt"]&(1<<14) != 0, "the plugin's handler holds SIGTERM: %v", st)
	assert.Zero(t, st["SigIgn"]&(1<<14), "SIGTERM is not ignored: %v", st)
	start := time.Now()
	require.NoError(t, os.WriteFile(dir+"/go", nil, 0o644))
	j := c.waitDone(t, id, 30*time.Second)
	assert.Less(t, time.Since(start), 10*time.Second)
	assert.Equal(t, "COMPLETED", j.State)
	out, _ := os.ReadFile(dir + "/out")
	assert.Contains(t, string(out), "user kill sent\nsleeper rc=143\n")
}

// Restored processes keep it: requeued twice (Slurm's SIGTERM checkpoints the job each
// time), a program restored from the images survives Slurm's SIGTERM and root's, still has
// the handler, and still dies at once of its user's SIGTERM; a program the restored shell
// starts after the restore does too.
func TestSignalsAfterRestore(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	dir := workdir(t)
	script := writeScript(t, dir, "job.sh", `#!/bin/bash
#SBATCH --open-mode=append
`+sleeper+`
i=0
while [ ! -e done ]; do
  i=$((i+1)); echo "count $i"
  if [ -e trigger ]; then
    rm -f trigger
    t0=$(date +%s%N)
    kill $s && echo "user kill sent"
    wait $s; rc=$?
    echo "sleeper rc=$rc ms=$(( ($(date +%s%N) - t0) / 1000000 ))"
    `+sleeper+`
    echo "new sleeper"
  fi
  sleep 0.2
done
echo final
`)
	out, errf := dir+"/out", dir+"/err"
	id := c.sbatch(t, dir, "--dmtcp", "-o", out, "-e", errf, script)
	killed := regexp.MustCompile(`user kill sent\nsleeper rc=143 ms=(\d+)\n`)
	for run := 1; run <= 2; run++ {
		c.requeueAt(t, id, out, len(counts(readFile(out)))+5)
		c.waitState(t, id, 60*time.Second, "RUNNING")
		waitFile(t, errf, fmt.Sprintf("restart %d: restoring generation %d", run, run), 60*time.Second)
		// The sleeper restored from the images (started before the checkpoint).
		pid := findSleeper(t, dir)
		require.NoError(t, syscall.Kill(pid, syscall.SIGTERM), "root's SIGTERM to %d", pid)
		time.Sleep(500 * time.Millisecond)
		require.True(t, running(pid), "run %d: the restored program died of root's SIGTERM", run)
		st := sigStatus(t, pid)
		assert.True(t, st["SigCgt"]&(1<<14) != 0, "run %d: the plugin's handler is restored: %v", run, st)
		before := len(killed.FindAllString(readFile(out), -1))
		require.NoError(t, os.WriteFile(dir+"/trigger", nil, 0o644))
		var m [][]string
		require.Eventually(t, func() bool {
			m = killed.FindAllStringSubmatch(readFile(out), -1)
			return len(m) > before
		}, 30*time.Second, 100*time.Millisecond, "run %d: the restored sleeper did not die of its user's SIGTERM", run)
		ms, _ := strconv.Atoi(m[len(m)-1][1])
		assert.Less(t, ms, 2000, "run %d: at once", run)
	}
	require.NoError(t, os.WriteFile(dir+"/done", nil, 0o644))
	j := c.waitDone(t, id, 60*time.Second)
	assert.Equal(t, "COMPLETED", j.State)
	assert.Equal(t, 2, j.Restarts)
	b := readFile(out)
	assert.Contains(t, b, "final\n")
	assert.Len(t, killed.FindAllString(b, -1), 2, "one user kill per restore:\n%s", b)
	got := counts(b)
	for i := 1; i < len(got); i++ {
		assert.GreaterOrEqual(t, got[i], got[i-1], "resumed, not restarted: %v", got)
	}
	e := readFile(errf)
	assert.Equal(t, 2, strings.Count(e, "slurm-dmtcp: checkpoint (signal) generation"), "stderr:\n%s", e)
}

// sleeper starts a long sleep in the background, in the folder "sleeper" of the job's
// folder (how findSleeper tells it from any other process, restored ones included: DMTCP
// restores the folder, not the command line), its pid in $s.
const sleeper = `mkdir -p sleeper; (cd sleeper && exec sleep 1000) & s=$!`

// findSleeper returns the pid of the sleeper of the job whose folder is dir.
func findSleeper(t *testing.T, dir string) int {
	t.Helper()
	want := filepath.Join(dir, "sleeper")
	var found int
	require.Eventually(t, func() bool {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
			comm, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
			if err == nil && cwd == want && strings.Contains(string(comm), "sleep") && running(pid) {
				found = pid
				return true
			}
		}
		return false
	}, 20*time.Second, 50*time.Millisecond, "no sleep runs in %s", want)
	return found
}

// procStatus returns the fields of /proc/PID/status, or nil when there is no such process.
func procStatus(pid int) map[string]string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// running says whether pid is a live process (not gone, not a zombie).
func running(pid int) bool {
	st := procStatus(pid)
	return st != nil && !strings.HasPrefix(st["State"], "Z") && !strings.HasPrefix(st["State"], "X")
}

// sigStatus returns the Sig* masks of /proc/PID/status.
func sigStatus(t *testing.T, pid int) map[string]uint64 {
	t.Helper()
	st := procStatus(pid)
	require.NotNil(t, st, "no process %d", pid)
	m := map[string]uint64{}
	for k, v := range st {
		if strings.HasPrefix(k, "Sig") {
			if n, err := strconv.ParseUint(v, 16, 64); err == nil {
				m[k] = n
			}
		}
	}
	return m
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
