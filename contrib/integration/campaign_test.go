//go:build integration

package integration

import (
	"fmt"
	"math/rand"
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

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/generations"
)

// The fault campaign (make faults TRIALS=N): each trial is a real job of a realistic
// workload, hit at a random (seeded, replayable) moment by one fault. Every trial checks
// the same invariant: the job ends with exactly the result of an uninterrupted run, it
// resumed from a generation whenever one existed before the fault (never from the top),
// and every generation the error file announced verifies.

// campaignSteps is how long each workload runs: about 20 s uninterrupted.
const campaignSteps = 50

// campaignDriver: a Python driver that runs a subprocess and a multiprocessing pool each step.
const campaignDriver = `#!/usr/bin/env python3
import multiprocessing, subprocess, sys, time
def sq(x):
    return x * x
if __name__ == "__main__":
    print("start", flush=True)
    total = 0
    with multiprocessing.Pool(2) as pool:
        for n in range(1, %d + 1):
            out = subprocess.run([sys.executable, "-c", "print(%%d * 3)" %% n], stdout=subprocess.PIPE, text=True, check=True).stdout
            total += int(out) + sum(pool.map(sq, range(n, n + 4)))
            print("step", n, total, flush=True)
            time.sleep(0.3)
    print("result", total, flush=True)
`

func driverResult(steps int) int {
	want := 0
	for n := 1; n <= steps; n++ {
		want += 3 * n
		for k := n; k < n+4; k++ {
			want += k * k
		}
	}
	return want
}

// campaignShell: a shell loop that forks a command substitution and a subshell each step.
const campaignShell = `#!/bin/bash
echo start
total=0
for i in $(seq 1 %d); do
  v=$(expr $i \* $i)
  total=$((total + v))
  echo "step $i $total"
  ( sleep 0.3 )
done
echo "result $total"
`

func shellResult(steps int) int {
	want := 0
	for i := 1; i <= steps; i++ {
		want += i * i
	}
	return want
}

// campaignThreads: a C program of two threads that meet at barriers every step.
const campaignThreads = `#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static long rounds;
static unsigned long long acc[2];
static pthread_barrier_t go, done;

static void *work(void *arg)
{
	long i = (long)arg;
	for (long k = 1; k <= rounds; k++) {
		pthread_barrier_wait(&go);
		for (long r = 0; r < 100000; r++)
			acc[i] = (acc[i] * 31 + (unsigned long long)(k * (i + 1) + r)) % 1000000007ULL;
		pthread_barrier_wait(&done);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th[2];
	rounds = argc > 1 ? atol(argv[1]) : 10;
	pthread_barrier_init(&go, NULL, 3);
	pthread_barrier_init(&done, NULL, 3);
	printf("start\n");
	fflush(stdout);
	for (long i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, work, (void *)i);
	for (long k = 1; k <= rounds; k++) {
		pthread_barrier_wait(&go);
		pthread_barrier_wait(&done);
		printf("step %ld %llu\n", k, (acc[0] + acc[1]) % 1000000007ULL);
		fflush(stdout);
		usleep(300000);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	printf("result %llu\n", (acc[0] + acc[1]) % 1000000007ULL);
	return 0;
}
`

func threadsResult(steps int) uint64 {
	var acc [2]uint64
	for k := uint64(1); k <= uint64(steps); k++ {
		for i := uint64(0); i < 2; i++ {
			for r := uint64(0); r < 100000; r++ {
				acc[i] = (acc[i]*31 + k*(i+1) + r) % 1000000007
			}
		}
	}
	return (acc[0] + acc[1]) % 1000000007
}

// A campaign workload: how to submit it, which step runs under DMTCP, which processes are
// "the application" to kill, and what an uninterrupted run prints.
type campaignWorkload struct {
	name string
	// step is the folder of the --dmtcp step in the job's checkpoint folder.
	step string
	// script writes the job's files into dir and returns the batch script and its sbatch
	// options: every CPU of the node (so that a job of a higher partition preempts it)
	// and DMTCP's, unless a step inside asks for it.
	script func(t *testing.T, dir string) (string, []string)
	// app tells an application process by its command line.
	app *regexp.Regexp
	// result is the line of an uninterrupted run's output that ends it ("" for per-rank
	// results, checked by ranks).
	result string
	ranks  map[int]int64
	// starts tells whether the program prints "start" once at its beginning.
	starts bool
}

func campaignWorkloads() []campaignWorkload {
	n := campaignSteps
	return []campaignWorkload{
		{name: "python-driver", step: "batch", app: regexp.MustCompile(`^python3 .*/slurm_script`),
			result: fmt.Sprintf("result %d\n", driverResult(n)), starts: true,
			script: func(t *testing.T, dir string) (string, []string) {
				return writeScript(t, dir, "driver.py", fmt.Sprintf(campaignDriver, n)), []string{"-c2", "--dmtcp-interval=2s"}
			}},
		{name: "shell-loop", step: "batch", app: regexp.MustCompile(`^/bin/bash .*/slurm_script`),
			result: fmt.Sprintf("result %d\n", shellResult(n)), starts: true,
			script: func(t *testing.T, dir string) (string, []string) {
				return writeScript(t, dir, "loop.sh", fmt.Sprintf(campaignShell, n)), []string{"-c2", "--dmtcp-interval=2s"}
			}},
		{name: "threads-c", step: "batch", app: regexp.MustCompile(`/threads \d+`),
			result: fmt.Sprintf("result %d\n", threadsResult(n)), starts: true,
			script: func(t *testing.T, dir string) (string, []string) {
				buildThreads(t, dir)
				return writeScript(t, dir, "job.sh", fmt.Sprintf("#!/bin/bash\nexec %s/threads %d\n", dir, n)), []string{"-c2", "--dmtcp-interval=2s"}
			}},
		{name: "step-of-2-tasks", step: "step-0", app: regexp.MustCompile(`^python3 \./solo\.py`),
			ranks: soloExpected(2, n),
			script: func(t *testing.T, dir string) (string, []string) {
				writeScript(t, dir, "solo.py", soloProgram)
				return writeScript(t, dir, "job.sh", fmt.Sprintf(`#!/bin/bash
srun -n2 --dmtcp --dmtcp-interval=2s ./solo.py %d unused 0.4 || exit 1
echo "step exit $?"
`, n)), []string{"-n2"}
			}},
	}
}

func workloadNamed(t *testing.T, ws []campaignWorkload, name string) campaignWorkload {
	t.Helper()
	var names []string
	for _, w := range ws {
		if w.name == name {
			return w
		}
		names = append(names, w.name)
	}
	t.Fatalf("SDMTCP_FAULT_WORKLOAD=%s: expected one of %s", name, strings.Join(names, ", "))
	return campaignWorkload{}
}

func buildThreads(t *testing.T, dir string) {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("SKIP: needs a C compiler (cc) to build the threaded workload")
	}
	src := filepath.Join(dir, "threads.c")
	require.NoError(t, os.WriteFile(src, []byte(campaignThreads), 0o644))
	out, err := exec.Command(cc, "-O1", "-Wall", "-pthread", "-o", filepath.Join(dir, "threads"), src).CombinedOutput()
	require.NoError(t, err, "cc: %s", out)
}

// The faults of the campaign. Each waits for its moment, strikes, and makes sure the job
// runs again when the fault alone would leave it ended.
var campaignFaults = []string{
	"requeue", "requeue-at-start", "requeue-during-commit", "requeue-while-restoring",
	"preempt", "time-limit",
	"kill-application", "kill-coordinator", "kill-agent", "kill-launcher", "kill-slurmstepd",
	"disk-full", "scontrol-failing",
}

// jobProc is one process of a job's steps (slurmstepd and everything below it).
type jobProc struct {
	pid, ppid int
	cmd       string
}

func jobProcs(t *testing.T, id string) []jobProc {
	t.Helper()
	out, err := exec.Command("ps", "-eo", "pid=,ppid=,args=").Output()
	require.NoError(t, err)
	all := map[int]jobProc{}
	children := map[int][]int{}
	var roots []int
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		pid, _ := strconv.Atoi(f[0])
		ppid, _ := strconv.Atoi(f[1])
		p := jobProc{pid: pid, ppid: ppid, cmd: strings.Join(f[2:], " ")}
		all[pid] = p
		children[ppid] = append(children[ppid], pid)
		if strings.HasPrefix(p.cmd, "slurmstepd: ["+id+".") {
			roots = append(roots, pid)
		}
	}
	var procs []jobProc
	for i := 0; i < len(roots); i++ {
		procs = append(procs, all[roots[i]])
		roots = append(roots, children[roots[i]]...)
	}
	return procs
}

// victims are the processes a kill fault chooses from.
func victims(t *testing.T, id string, w campaignWorkload, fault string) []int {
	t.Helper()
	procs := jobProcs(t, id)
	match := func(p jobProc) bool {
		switch fault {
		case "kill-coordinator":
			return strings.Contains(p.cmd, "dmtcp_coordinator")
		case "kill-agent":
			return strings.Contains(p.cmd, "slurm-dmtcp-agent")
		case "kill-launcher":
			return strings.Contains(strings.Fields(p.cmd)[0], "slurm-dmtcp-exec")
		case "kill-slurmstepd":
			return strings.HasPrefix(p.cmd, "slurmstepd: ["+id+"."+map[string]string{"batch": "batch", "step-0": "0"}[w.step]+"]")
		}
		return w.app.MatchString(p.cmd) && !strings.Contains(p.cmd, "slurm-dmtcp-exec")
	}
	isApp := map[int]bool{}
	for _, p := range procs {
		if match(p) {
			isApp[p.pid] = true
		}
	}
	var pids []int
	for _, p := range procs {
		// The application's own main processes, not the workers it forked: a pool whose
		// worker is killed waits forever with or without DMTCP.
		if isApp[p.pid] && (fault != "kill-application" || !isApp[p.ppid]) {
			pids = append(pids, p.pid)
		}
	}
	return pids
}

var announcedRE = regexp.MustCompile(`slurm-dmtcp: (?:checkpoint \([a-z-]+\) )?generation (\d+): `)

func announced(errf string) []int {
	b, _ := os.ReadFile(errf)
	var nums []int
	for _, m := range announcedRE.FindAllStringSubmatch(string(b), -1) {
		n, _ := strconv.Atoi(m[1])
		nums = append(nums, n)
	}
	return nums
}

func TestFaultCampaign(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SDMTCP_FAULT_TRIALS"))
	if n <= 0 {
		t.Skip("SKIP: the fault campaign runs with SDMTCP_FAULT_TRIALS=N (make faults TRIALS=N)")
	}
	c := newCluster(t)
	needDMTCP(t)
	base := faultSeed(t)
	var failures []string
	passed := 0
	for i := 0; i < n; i++ {
		seed := base + int64(i)
		rng := rand.New(rand.NewSource(seed))
		ws := campaignWorkloads()
		w := ws[rng.Intn(len(ws))]
		fault := campaignFaults[rng.Intn(len(campaignFaults))]
		if name := os.Getenv("SDMTCP_FAULT_WORKLOAD"); name != "" {
			w = workloadNamed(t, ws, name) // one workload only, to hunt a failure down
		}
		if f := os.Getenv("SDMTCP_FAULT"); f != "" {
			fault = f // one fault only, to hunt a failure down
		}
		if fault == "time-limit" && w.step != "batch" {
			// --dmtcp-continue is a batch job's option: its step gets a requeue instead.
			fault = "requeue"
		}
		var dir, id string
		start := time.Now()
		ok := t.Run(fmt.Sprintf("trial %d seed %d %s %s", i, seed, w.name, fault), func(t *testing.T) {
			dir = workdir(t)
			campaignTrial(t, c, w, fault, rng, dir, &id)
		})
		verdict := "PASS"
		if ok {
			passed++
		} else {
			verdict = "FAIL"
			failures = append(failures, fmt.Sprintf("faults: FAIL seed %d %s %s: job %s, folder %s", seed, w.name, fault, id, dir))
		}
		fmt.Printf("faults: trial %d seed %d %s %s: %s (job %s, %s)\n", i, seed, w.name, fault, verdict, id, time.Since(start).Round(time.Second))
	}
	fmt.Printf("faults: %d passed, %d failed\n", passed, len(failures))
	for _, f := range failures {
		fmt.Println(f)
	}
}

// campaignTrial runs one job of w, strikes it with fault, and checks the invariant.
func campaignTrial(t *testing.T, c *cluster, w campaignWorkload, fault string, rng *rand.Rand, dir string, jobID *string) {
	policy := "min_interval=1 keep=100"
	home := homeOf(t, testUser)
	jobRoot := filepath.Join(home, ".slurm-dmtcp")
	var fs string
	if fault == "disk-full" {
		fs = c.fullFS(t)
		jobRoot = filepath.Join(fs, testUser)
		policy += " checkpoint_dir=" + fs + "/%u/%j"
	}
	c.withPolicy(t, policy)
	script, ask := w.script(t, dir)
	out, errf := dir+"/out", dir+"/err"
	args := append([]string{"-p", "low", "--requeue", "--open-mode=append", "-o", out, "-e", errf}, ask...)
	if fault == "time-limit" {
		args = append(args, "-t", "1", "--dmtcp-lead=48s", "--dmtcp-continue=3")
	}
	id := c.sbatch(t, dir, append(args, script)...)
	*jobID = id
	jobDir := filepath.Join(jobRoot, id)
	stepDir := filepath.Join(jobDir, w.step)
	if fs != "" {
		t.Cleanup(func() { _ = os.RemoveAll(jobDir) }) // after the copy below: the tmpfs is small
	}
	t.Cleanup(func() {
		if t.Failed() {
			_ = exec.Command("cp", "-a", jobDir, filepath.Join(dir, "checkpoints")).Run()
		}
	})
	delay := time.Duration(rng.Intn(4000)) * time.Millisecond
	var before []int // generations announced before the fault
	switch fault {
	case "requeue-at-start":
		c.waitState(t, id, 60*time.Second, "RUNNING")
		time.Sleep(delay / 2)
		before = announced(errf)
		c.requeue(t, id)
	case "time-limit":
		// The fault is the job's own time limit: a checkpoint before it, then a requeue.
		c.waitState(t, id, 60*time.Second, "RUNNING")
		before = []int{1}
	default:
		waitFile(t, errf, "generation 1:", 90*time.Second)
		time.Sleep(delay)
		if fault == "requeue-during-commit" {
			waitGlob(t, stepDir+"/.current/*", 30*time.Second)
			time.Sleep(time.Duration(rng.Intn(300)) * time.Millisecond)
		}
		before = announced(errf)
		switch fault {
		case "disk-full":
			c.diskFull(t, id, fs, stepDir, out, w, rng)
		case "scontrol-failing":
			c.controllerDown(t, id, out, w, rng)
		default:
			strike(t, c, id, w, fault, rng, errf)
		}
	}
	t.Logf("%s %s after %s; generations before it: %v", w.name, fault, delay, before)

	j := c.waitDone(t, id, 240*time.Second)
	e, _ := os.ReadFile(errf)
	b, _ := os.ReadFile(out)
	want := []string{"COMPLETED"}
	if fault == "preempt" {
		// Slurm ends a preempted job that outlives its grace time, and records one that
		// ends on its own after the grace time began as TIMEOUT: either way its work is done.
		want = append(want, "TIMEOUT")
	}
	require.Contains(t, want, j.State, "error file:\n%s\noutput:\n%s", e, b)
	// A preempted job whose work ended on its own within its grace time: Slurm 22.05 ends
	// it there (TIMEOUT), never to run again; 24.05 and later requeue it and run its batch
	// script again from the top, where a step that finished starts from the top too. That
	// second run is Slurm's, not a restore: each run's result is whole, once per run.
	// slurmctld's log shows it: no preemption requeue, one requeue at the end of the run.
	rerun := fault == "preempt" && j.Restarts == 1 && c.keepsGraceFlag(t) &&
		strings.Contains(string(e), "this step finished in an earlier run") &&
		parseGraceRequeues(c.ctldLog(t), id) == graceRequeues{preempted: 0, atEnd: 1}
	// A preempted job requeued at the end of its grace time: 24.05 and later requeue the
	// run after that, restored and whole, once more when it ends (grace_test.go).
	again := fault == "preempt" && c.requeuedAgainAfterGrace(t, id, j.Restarts)
	switch {
	case rerun || again:
		if rerun {
			t.Logf("Slurm %d.%d ran the preempted job again after its work had ended in its grace time", c.slurmMajor, c.slurmMinor)
		}
		if w.ranks != nil {
			for rk, v := range w.ranks {
				ends := regexp.MustCompile(fmt.Sprintf(`(?m)^rank %d final (\d+) on \S+$`, rk)).FindAllStringSubmatch(string(b), -1)
				require.Len(t, ends, 2, "rank %d: one end per run:\n%s", rk, b)
				for _, m := range ends {
					assert.Equal(t, strconv.FormatInt(v, 10), m[1], "rank %d's final value", rk)
				}
			}
		} else {
			assert.Equal(t, 2, strings.Count(string(b), w.result), "the uninterrupted result, once per run:\n%s", b)
		}
	case w.ranks != nil:
		finals, _ := rankFinals(t, string(b))
		assert.Equal(t, w.ranks, finals, "final values of every rank")
	default:
		// Also when a full disk left no room for the SIGTERM checkpoint: the program runs on
		// in Slurm's KillWait, and one that ends there is done, not run again.
		assert.Equal(t, 1, strings.Count(string(b), w.result), "the uninterrupted result, once:\n%s", b)
	}
	// A job that ran again resumed from a generation whenever one existed before the fault.
	// (A preempted batch job may end within its grace time and never run again.)
	if again {
		assert.Contains(t, string(e), "slurm-dmtcp: restart 1: restoring generation ", "a generation existed before the fault")
		assert.Contains(t, string(e), "slurm-dmtcp: restart 2: this step finished in an earlier run")
	}
	if len(before) > 0 && j.Restarts > 0 && !rerun && !again {
		assert.Contains(t, string(e), "slurm-dmtcp: restart 1: restoring generation ", "a generation existed before the fault")
		assert.NotContains(t, string(e), "from the top")
		if w.starts {
			assert.Equal(t, 1, strings.Count(string(b), "start\n"), "started from the top again:\n%s", b)
		}
	}
	// Every generation announced verifies, and every restore was of one of them.
	gens := announced(errf)
	assert.NotEmpty(t, gens)
	for _, g := range gens {
		_, err := generations.Generation{Number: g, Path: filepath.Join(stepDir, generations.GenDirName(g))}.Verify()
		assert.NoError(t, err, "announced generation %d", g)
	}
	// Every restored one too: its announcement may be lost with the process that carried
	// the step's output when that was the one killed.
	for _, m := range regexp.MustCompile(`restoring generation (\d+)`).FindAllStringSubmatch(string(e), -1) {
		g, _ := strconv.Atoi(m[1])
		_, err := generations.Generation{Number: g, Path: filepath.Join(stepDir, generations.GenDirName(g))}.Verify()
		assert.NoError(t, err, "restored generation %d", g)
	}
	// What the job said about checkpoints that did not happen and computations that died.
	for _, l := range regexp.MustCompile(`slurm-dmtcp: [^\n]*(?:skipped|failed|not committed|died|damaged)[^\n]*`).FindAllString(string(e), -1) {
		t.Logf("job: %s", l)
	}
	// DMTCP's assertions in processes that died while the job was taken down, or whose
	// death the application survived, are not the job's failure: the checks above are.
	for _, a := range regexp.MustCompile(`ASSERT at [^\n]*`).FindAllString(string(e), -1) {
		t.Logf("DMTCP: %s", a)
	}
}

// strike hits a running job that has a generation with fault.
func strike(t *testing.T, c *cluster, id string, w campaignWorkload, fault string, rng *rand.Rand, errf string) {
	t.Helper()
	switch fault {
	case "requeue", "requeue-during-commit":
		c.requeue(t, id)
	case "requeue-while-restoring":
		c.requeue(t, id)
		waitFile(t, errf, "restart 1: restoring generation ", 90*time.Second)
		time.Sleep(time.Duration(rng.Intn(1500)) * time.Millisecond)
		c.requeue(t, id)
	case "preempt":
		high := c.sbatch(t, "/tmp", "-p", "high", "-c2", "-o", "/dev/null", "--wrap", "sleep 2")
		c.waitDone(t, high, 90*time.Second)
	default: // kill-*
		pids := victims(t, id, w, fault)
		require.NotEmpty(t, pids, "no process for %s in job %s: %v", fault, id, jobProcs(t, id))
		pid := pids[rng.Intn(len(pids))]
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		t.Logf("%s: killed pid %d of %v", fault, pid, pids)
		time.Sleep(2 * time.Second)
		c.runAgain(t, id)
		if fault == "kill-slurmstepd" && w.step != "batch" {
			killStaleSrun(t, id)
		}
	}
}

// killStaleSrun ends an srun of the job's previous run that outlived it: with the test
// cluster's proctrack/linuxproc, an srun whose step lost its slurmstepd is no longer below
// the batch script once that ends, so the requeue does not end it, and KillWait + 2 s after
// the requeue it kills "its" step, which by then is the step of the same number in the
// job's next run. proctrack/cgroup, which sites use, ends every process of a run at its
// requeue: this does what it would. srun's shepherd (its child, which cancels the step when
// srun dies) goes first.
func killStaleSrun(t *testing.T, id string) {
	t.Helper()
	out, err := exec.Command("ps", "-eo", "pid=,ppid=,comm=").Output()
	require.NoError(t, err)
	children := map[string][]int{}
	var stale []int
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || f[2] != "srun" {
			continue
		}
		pid, _ := strconv.Atoi(f[0])
		children[f[1]] = append(children[f[1]], pid)
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if f[1] == "1" && strings.Contains("\x00"+string(env), "\x00SLURM_JOB_ID="+id+"\x00") {
			stale = append(stale, pid)
		}
	}
	for _, pid := range stale {
		for _, c := range children[strconv.Itoa(pid)] {
			_ = syscall.Kill(c, syscall.SIGKILL)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Logf("the previous run's srun (pid %d, shepherd %v) outlived it: killed", pid, children[strconv.Itoa(pid)])
	}
}

func waitGlob(t *testing.T, pattern string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("nothing matches %s after %s", pattern, timeout)
}
