//go:build integration

package integration

import (
	"crypto/sha256"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The compatibility suite (make apps): real programs from Debian, each run as a real
// sbatch --dmtcp job, requeued at a random (seeded, replayable) moment of its run, and
// compared with an uninterrupted run of the same program outside Slurm and DMTCP.
// Each program prints "start" once and then one progress line per step (flushed): the
// requeue comes after a random number of them, and a second "start" would mean the job
// ran from the top again instead of resuming.

// appCase is one program: what it needs, how its folder is prepared, how it runs, what
// counts as progress, and what of its run must equal the uninterrupted run's.
type appCase struct {
	name    string
	needs   []string // commands (or absolute paths) that must exist
	install string   // the Debian packages that give them
	check   string   // a shell command that must succeed too (e.g. a Python import)
	files   map[string]string
	prepare string // shell lines run as the test user in the folder before the runs
	setup   string // lines of the batch script (and of the uninterrupted run) before command
	command string // run in the folder; the batch script execs it
	// progress matches one line of progress; the requeue comes after between lo and hi of them.
	progress *regexp.Regexp
	// stderr: the progress is on stderr; the result is stdout and the progress lines.
	stderr bool
	lo, hi int
	first  string // printed once by a run from the top
	// result is what must be equal to the uninterrupted run's (from the folder and the
	// program's standard output); nil: the whole standard output, byte for byte.
	result func(dir, out string) (string, error)
	what   string // what result compares, for the verdict line
	limit  time.Duration
}

var appStepRE = regexp.MustCompile(`(?m)^step \d+ `)

// appEnv starts both runs: the suite itself runs under make (make apps), whose variables
// would make the make -j2 program print "make[1]: Entering directory" lines.
const appEnv = "unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES\n"

// sha256Files is the checksum of each named file of dir, one line per file.
func sha256Files(dir string, names []string) (string, error) {
	var b strings.Builder
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%x  %s\n", sha256.Sum256(data), n)
	}
	return b.String(), nil
}

const appNumpy = `import hashlib, sys, time
import numpy as np
from scipy import integrate, linalg
steps = int(sys.argv[1])
print("start", flush=True)
rng = np.random.default_rng(20261208)
n = 300
a = rng.standard_normal((n, n))
a = a @ a.T + n * np.eye(n)
x = rng.standard_normal(n)
for k in range(1, steps + 1):
    x = linalg.solve(a, x + np.sin(x), assume_a="pos")
    x /= np.linalg.norm(x)
    y = integrate.solve_ivp(lambda t, y: -y + np.cos(t * y), (0, 2), x[:16], rtol=1e-10, atol=1e-12).y[:, -1]
    h = hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()[:16]
    print("step", k, h, "%.15e" % float(x @ np.arange(n)), flush=True)
    time.sleep(0.5)
print("result", hashlib.sha256(x.tobytes()).hexdigest(), flush=True)
`

const appOpenMP = `#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long steps = argc > 1 ? atol(argv[1]) : 10;
	unsigned long long state = 1;
	printf("start\n");
	fflush(stdout);
	for (long k = 1; k <= steps; k++) {
		unsigned long long sum = 0;
		int threads = 0;
#pragma omp parallel reduction(+ : sum)
		{
#pragma omp single
			threads = omp_get_num_threads();
#pragma omp for schedule(static)
			for (long i = 0; i < 6000000; i++) {
				unsigned long long v = ((unsigned long long)i * 2654435761ULL + (unsigned long long)k * state) % 1000000007ULL;
				sum += v * v % 998244353ULL;
			}
		}
		state = (state * 31 + sum) % 1000000007ULL;
		printf("step %ld %llu threads %d\n", k, state, threads);
		fflush(stdout);
		usleep(400000);
	}
	printf("result %llu\n", state);
	return 0;
}
`

const appJava = `import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

public class Work {
	public static void main(String[] args) throws Exception {
		int steps = Integer.parseInt(args[0]);
		ExecutorService pool = Executors.newFixedThreadPool(2);
		System.out.println("start");
		System.out.flush();
		long state = 1;
		for (int k = 1; k <= steps; k++) {
			final long s = state;
			final int kk = k;
			List<Future<Long>> parts = new ArrayList<>();
			for (int p = 0; p < 2; p++) {
				final int pp = p;
				parts.add(pool.submit(() -> {
					long acc = 0;
					for (long i = pp; i < 6000000; i += 2)
						acc = (acc * 31 + i * kk + s) % 1000000007L;
					return acc;
				}));
			}
			StringBuilder sb = new StringBuilder();
			for (int i = 0; i < 20000; i++)
				sb.append(i ^ k); // garbage for the collector
			state = (state * 7 + parts.get(0).get() + parts.get(1).get() + sb.length()) % 1000000007L;
			System.out.println("step " + k + " " + state);
			System.out.flush();
			Thread.sleep(400);
		}
		pool.shutdown();
		System.out.println("result " + state);
	}
}
`

const appR = `steps <- as.integer(commandArgs(TRUE)[1])
cat("start\n"); flush(stdout())
set.seed(20261208)
n <- 300
m <- matrix(rnorm(n * n), n)
m <- crossprod(m) + diag(n) * n
x <- rnorm(n)
for (k in 1:steps) {
  x <- solve(m, x + sin(x))
  x <- x / sqrt(sum(x^2))
  fit <- lm(x ~ seq_len(n))
  cat(sprintf("step %d %.15e %.15e\n", k, sum(x * seq_len(n)), coef(fit)[2])); flush(stdout())
  Sys.sleep(0.5)
}
cat(sprintf("result %.15e\n", sum(x)))
`

const appSqlite = `import hashlib, sqlite3, sys, time
steps = int(sys.argv[1])
print("start", flush=True)
db = sqlite3.connect("app.db")
db.execute("create table t(k integer primary key, v text, h text)")
db.execute("create table agg(step integer primary key, n integer, s integer)")
db.commit()
for k in range(1, steps + 1):
    with db:
        rows = []
        for i in range(500):
            key = k * 1000 + i
            rows.append((key, "v%d" % (key * 7919 % 100003), hashlib.sha256(str(key).encode()).hexdigest()))
        db.executemany("insert into t values (?, ?, ?)", rows)
        db.execute("delete from t where k % 7 = 0 and k < ?", (k * 1000,))
        n, s = db.execute("select count(*), sum(k) from t").fetchone()
        db.execute("insert into agg values (?, ?, ?)", (k, n, s))
    print("step", k, n, s, flush=True)
    time.sleep(0.5)
db.close()
print("result", n, s, flush=True)
`

const appPool = `import hashlib, multiprocessing, sys, time
def work(args):
    k, i = args
    h = hashlib.sha256(("%d:%d" % (k, i)).encode()).digest()
    for _ in range(30000):
        h = hashlib.sha256(h).digest()
    return int.from_bytes(h[:6], "big")
if __name__ == "__main__":
    steps = int(sys.argv[1])
    print("start", flush=True)
    total = 0
    with multiprocessing.Pool(2) as pool:
        for k in range(1, steps + 1):
            total = (total + sum(pool.map(work, [(k, i) for i in range(8)]))) % (1 << 61)
            print("step", k, total, flush=True)
            time.sleep(0.3)
    print("result", total, flush=True)
`

// appPipeline: generated data through xz and sha256sum, the progress on stderr.
const appPipeline = `#!/bin/bash
steps=$1
echo start
for i in $(seq 1 "$steps"); do
	seq $((i * 100000)) $((i * 100000 + 99999))
	echo "step $i " >&2
	sleep 0.6
done | xz -T1 -6 | sha256sum
`

// appDupStdout: progress written through a copy of stdout made with exec 3>&1 (a common
// way for a script to keep writing to the job's output from inside a pipeline).
const appDupStdout = `#!/bin/bash
steps=$1
echo start
exec 3>&1
for i in $(seq 1 "$steps"); do
	echo "step $i $((i * i))" >&3
	sleep 0.6
done | cat
echo "result done"
`

// appMakeObjects is the number of C files of the generated make project.
const appMakeObjects = 40

func appMakeFiles() map[string]string {
	f := map[string]string{}
	var main strings.Builder
	main.WriteString("#include <stdio.h>\n")
	for i := 0; i < appMakeObjects; i++ {
		fmt.Fprintf(&main, "unsigned long f%d(unsigned long);\n", i)
		f[fmt.Sprintf("f%d.c", i)] = fmt.Sprintf(`unsigned long f%d(unsigned long x)
{
	for (int r = 0; r < %d; r++)
		x = x * 6364136223846793005UL + %d;
	return x ^ (x >> 29);
}
`, i, 1000+i, 2*i+1)
	}
	main.WriteString("int main(void)\n{\n\tunsigned long x = 1;\n")
	for i := 0; i < appMakeObjects; i++ {
		fmt.Fprintf(&main, "\tx = f%d(x);\n\tprintf(\"f%d %%lu\\n\", x);\n", i, i)
	}
	main.WriteString("\treturn 0;\n}\n")
	f["main.c"] = main.String()
	var objs []string
	for i := 0; i < appMakeObjects; i++ {
		objs = append(objs, fmt.Sprintf("f%d.o", i))
	}
	f["Makefile"] = "OBJS = main.o " + strings.Join(objs, " ") + "\n" +
		"app: $(OBJS)\n\t@gcc -o $@ $(OBJS)\n\t@echo linked $@\n" +
		"%.o: %.c\n\t@sleep 1\n\t@gcc -O2 -c $< -o $@\n\t@echo built $@\n"
	return f
}

// appMakeResult: the lines the build printed, sorted (make -j2 runs two recipes at a
// time, in either order), and the checksums of every object and of the program.
func appMakeResult(dir, out string) (string, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	sort.Strings(lines)
	names := []string{"main.o", "app"}
	for i := 0; i < appMakeObjects; i++ {
		names = append(names, fmt.Sprintf("f%d.o", i))
	}
	sums, err := sha256Files(dir, names)
	return strings.Join(lines, "\n") + "\n" + sums, err
}

func appCases() []appCase {
	py := "/usr/bin/python3"
	return []appCase{
		{name: "lammps", needs: []string{"lmp"}, install: "lammps",
			files: map[string]string{"in.melt": lammpsMelt}, command: "lmp -in in.melt -log none",
			progress: thermoRE, lo: 3, hi: 13, first: "Step Temp",
			result: func(_, out string) (string, error) {
				return strings.Join(thermoRE.FindAllString(out, -1), "\n"), nil
			}, what: "thermo figures (the timings differ)"},
		{name: "numpy", needs: []string{py}, install: "python3-numpy python3-scipy",
			check: py + " -c 'import numpy, scipy'", files: map[string]string{"numpy_app.py": appNumpy},
			command: py + " numpy_app.py 40", progress: appStepRE, lo: 8, hi: 32, first: "start"},
		{name: "openmp", needs: []string{"gcc"}, install: "gcc", files: map[string]string{"omp.c": appOpenMP},
			prepare: "gcc -O2 -fopenmp -o omp omp.c", setup: "export OMP_NUM_THREADS=2\n",
			command: "./omp 40", progress: appStepRE, lo: 8, hi: 32, first: "start"},
		{name: "java", needs: []string{"java", "javac"}, install: "default-jdk-headless",
			files: map[string]string{"Work.java": appJava}, prepare: "javac Work.java",
			command: "java -Xmx256m Work 40", progress: appStepRE, lo: 8, hi: 32, first: "start"},
		// R links OpenBLAS (Debian's libblas.so.3), whose constructor starts its threads
		// before DMTCP 5.0's pid plugin is ready: R crashes at once under dmtcp_launch
		// (SIGSEGV in removeExitedChildTids, plugin/pid/pid.cpp:184). With one OpenBLAS
		// thread there is no such thread; "r-openblas-threads" is R as it comes.
		{name: "r", needs: []string{"Rscript"}, install: "r-base-core", files: map[string]string{"app.R": appR},
			setup: "export OPENBLAS_NUM_THREADS=1\n", command: "Rscript app.R 40", progress: appStepRE, lo: 8, hi: 32, first: "start"},
		{name: "r-openblas-threads", needs: []string{"Rscript"}, install: "r-base-core", files: map[string]string{"app.R": appR},
			command: "Rscript app.R 40", progress: appStepRE, lo: 8, hi: 32, first: "start"},
		{name: "sqlite", needs: []string{py, "sqlite3"}, install: "python3 sqlite3",
			files: map[string]string{"sqlite_app.py": appSqlite}, command: py + " sqlite_app.py 40",
			progress: appStepRE, lo: 8, hi: 32, first: "start",
			result: func(dir, out string) (string, error) {
				dump, err := exec.Command("sqlite3", filepath.Join(dir, "app.db"), "pragma integrity_check", ".dump").Output()
				return fmt.Sprintf("%s\ndump sha256 %x (%d bytes)\n", out, sha256.Sum256(dump), len(dump)), err
			}, what: "output and sqlite3 .dump checksum"},
		{name: "make", needs: []string{"make", "gcc"}, install: "make gcc", files: appMakeFiles(),
			command: "echo start; make -j2 app && ./app", progress: regexp.MustCompile(`(?m)^built `), lo: 8, hi: 32,
			first: "start", result: appMakeResult, what: "build lines, sha256 of 42 built files, program output"},
		{name: "pipeline", needs: []string{"xz", "sha256sum"}, install: "xz-utils coreutils",
			files: map[string]string{"pipeline.sh": appPipeline}, command: "bash pipeline.sh 40",
			progress: appStepRE, stderr: true, lo: 8, hi: 32, first: "start",
			what: "stdout (the checksum) and the progress lines on stderr"},
		{name: "shell-dup-stdout", needs: []string{"bash"}, install: "bash",
			files: map[string]string{"dup.sh": appDupStdout}, command: "bash dup.sh 40",
			progress: appStepRE, lo: 8, hi: 32, first: "start"},
		{name: "multiprocessing", needs: []string{py}, install: "python3",
			files: map[string]string{"pool_app.py": appPool}, command: py + " pool_app.py 40",
			progress: appStepRE, lo: 8, hi: 32, first: "start"},
	}
}

// TestApps runs the compatibility suite: SDMTCP_APPS=all (make apps), or a comma-separated
// list of the programs to run (make apps APPS=lammps,java).
func TestApps(t *testing.T) {
	sel := os.Getenv("SDMTCP_APPS")
	if sel == "" {
		t.Skip("SKIP: the apps suite runs with make apps (SDMTCP_APPS=all or a list of programs)")
	}
	c := newCluster(t)
	needDMTCP(t)
	seed, err := seedFrom("SDMTCP_APPS_SEED") // SDMTCP_APPS_SEED=N replays a run
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("apps: seed %d (replay: make apps SEED=%d)\n", seed, seed)
	rng := rand.New(rand.NewSource(seed))
	want := map[string]bool{}
	for _, n := range strings.Split(sel, ",") {
		want[strings.TrimSpace(n)] = true
	}
	known := map[string]bool{"all": true}
	for _, a := range appCases() {
		known[a.name] = true
	}
	for n := range want {
		if !known[n] {
			t.Fatalf("SDMTCP_APPS: no program %q (all, or some of: %s)", n, appNames())
		}
	}
	passed, failed, skipped := 0, 0, 0
	for _, a := range appCases() {
		// Every program draws its moment, selected or not: a seed replays the same moments.
		at := a.lo + rng.Intn(a.hi-a.lo+1)
		if !want["all"] && !want[a.name] {
			continue
		}
		var v appVerdict
		start := time.Now()
		ok := t.Run(a.name, func(t *testing.T) { runApp(t, c, a, at, &v) })
		switch {
		case v.skip != "":
			skipped++
			fmt.Printf("%s: SKIP %s\n", a.name, v.skip)
		case ok:
			passed++
			fmt.Printf("%s: resumed, exact (%s; requeued after %d progress lines, %s; job %s, %s)\n",
				a.name, v.what, at, v.ckpt, v.id, time.Since(start).Round(time.Second))
		default:
			failed++
			if v.reason == "" {
				v.reason = "(see the test's log)"
			}
			fmt.Printf("%s: FAIL %s (requeue after %d progress lines; job %s, job folder %s)\n", a.name, v.reason, at, v.id, v.dir)
		}
	}
	tally := fmt.Sprintf("apps: %d passed, %d failed", passed, failed)
	if skipped > 0 {
		tally += fmt.Sprintf(", %d skipped", skipped)
	}
	fmt.Println(tally)
}

func appNames() string {
	var n []string
	for _, a := range appCases() {
		n = append(n, a.name)
	}
	return strings.Join(n, ",")
}

type appVerdict struct {
	id, dir, reason, skip, what string
	ckpt                        string // the checkpoint, as the error file announced it
}

// appCkptRE is the error file's line of the SIGTERM checkpoint: size, time, processes.
var appCkptRE = regexp.MustCompile(`checkpoint \(signal\) generation 1: (\S+ \S+) in (\S+ s) .*?, (\d+ process(?:es)?)`)

// runApp runs one program: the uninterrupted run in dir/ref beside the job in dir/job,
// the job requeued after at progress lines; v says what happened.
func runApp(t *testing.T, c *cluster, a appCase, at int, v *appVerdict) {
	for _, n := range a.needs {
		if _, err := exec.LookPath(n); err != nil {
			v.skip = fmt.Sprintf("%s not installed (apt-get install %s)", n, a.install)
			t.Skipf("SKIP: %s", v.skip)
		}
	}
	if a.check != "" {
		if out, err := exec.Command("bash", "-c", a.check).CombinedOutput(); err != nil {
			v.skip = fmt.Sprintf("%s failed: %s (apt-get install %s)", a.check, strings.TrimSpace(string(out)), a.install)
			t.Skipf("SKIP: %s", v.skip)
		}
	}
	fail := func(format string, args ...any) {
		t.Helper()
		v.reason = fmt.Sprintf(format, args...)
		t.Fatal(v.reason)
	}
	v.what = a.what
	if v.what == "" {
		v.what = "standard output byte for byte"
	}
	base := workdir(t)
	v.dir = base
	home := homeOf(t, testUser)
	u, err := user.Lookup(testUser)
	if err != nil {
		fail("%v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, sub := range []string{"ref", "job"} {
		d := filepath.Join(base, sub)
		if out, err := exec.Command("runuser", "-u", testUser, "--", "mkdir", d).CombinedOutput(); err != nil {
			fail("mkdir %s: %v %s", d, err, out)
		}
		for name, body := range a.files {
			p := filepath.Join(d, name)
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				fail("%v", err)
			}
			if err := os.Chown(p, uid, gid); err != nil {
				fail("%v", err)
			}
		}
		if a.prepare != "" {
			cmd := exec.Command("runuser", "-u", testUser, "--", "bash", "-c", "cd "+d+" && "+a.prepare)
			if out, err := cmd.CombinedOutput(); err != nil {
				fail("%s: %v: %s", a.prepare, err, out)
			}
		}
	}
	refDir, jobDir := filepath.Join(base, "ref"), filepath.Join(base, "job")

	// The uninterrupted run, outside Slurm and DMTCP, beside the job.
	refc := make(chan error, 1)
	go func() {
		cmd := exec.Command("runuser", "-u", testUser, "--", "bash", "-c",
			"cd "+refDir+"\n"+appEnv+a.setup+"("+a.command+") >out 2>err")
		refc <- cmd.Run()
	}()

	script := writeScript(t, jobDir, "job.sh", "#!/bin/bash\n#SBATCH --open-mode=append\n"+appEnv+a.setup+a.command+"\n")
	out, errf := jobDir+"/out", jobDir+"/err"
	v.id = c.sbatch(t, jobDir, "--dmtcp", "-o", out, "-e", errf, script)
	// Registered after sbatch's cleanup, so run before it removes the job's folder: a
	// failed job's checkpoints and agent logs are kept beside its output.
	t.Cleanup(func() {
		if t.Failed() {
			_ = exec.Command("cp", "-a", filepath.Join(home, ".slurm-dmtcp", v.id), filepath.Join(base, "job-folder")).Run()
		}
	})
	limit := a.limit
	if limit == 0 {
		limit = 240 * time.Second
	}
	progressFile := out
	if a.stderr {
		progressFile = errf
	}
	deadline := time.Now().Add(limit)
	for {
		b, _ := os.ReadFile(progressFile)
		if len(a.progress.FindAllIndex(b, -1)) >= at {
			break
		}
		if time.Now().After(deadline) {
			e, _ := os.ReadFile(errf)
			fail("no %d progress lines after %s; job state %s; error file: %s", at, limit, c.job(t, v.id).State, oneLine(string(e), 5))
		}
		if j := c.job(t, v.id); j.State != "RUNNING" && j.State != "PENDING" && j.State != "CONFIGURING" {
			e, _ := os.ReadFile(errf)
			fail("job ended %s (exit %s) before its requeue; error file: %s", j.State, j.ExitCode, oneLine(string(e), 5))
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.requeue(t, v.id)
	j := c.waitDone(t, v.id, limit+120*time.Second)
	e, _ := os.ReadFile(errf)
	b, _ := os.ReadFile(out)
	if j.State != "COMPLETED" {
		fail("job %s (exit %s); error file: %s", j.State, j.ExitCode, oneLine(string(e), 6))
	}
	if !strings.Contains(string(e), "slurm-dmtcp: restart 1: restoring generation") {
		fail("did not resume from a generation; error file: %s", oneLine(string(e), 6))
	}
	if m := appCkptRE.FindStringSubmatch(string(e)); m != nil {
		v.ckpt = fmt.Sprintf("checkpoint %s in %s, %s", m[1], m[2], m[3])
	}
	if strings.Contains(string(e), "ASSERT at") {
		fail("DMTCP failed an assertion: %s", oneLine(string(e), 6))
	}
	if n := strings.Count(string(b), a.first); n != 1 {
		fail("%q printed %d times: the program started from the top again", a.first, n)
	}

	if err := <-refc; err != nil {
		re, _ := os.ReadFile(filepath.Join(refDir, "err"))
		fail("uninterrupted run: %v: %s", err, oneLine(string(re), 5))
	}
	rb, _ := os.ReadFile(filepath.Join(refDir, "out"))
	if a.stderr {
		re, _ := os.ReadFile(filepath.Join(refDir, "err"))
		rb = append(rb, strings.Join(a.progress.FindAllString(string(re), -1), "\n")...)
		b = append(b, strings.Join(a.progress.FindAllString(string(e), -1), "\n")...)
	}
	res := a.result
	if res == nil {
		res = func(_, out string) (string, error) { return out, nil }
	}
	wantRes, err := res(refDir, string(rb))
	if err != nil {
		fail("result of the uninterrupted run: %v", err)
	}
	if len(a.progress.FindAllIndex(rb, -1)) <= at || strings.TrimSpace(wantRes) == "" {
		fail("the uninterrupted run printed only %d progress lines:\n%s", len(a.progress.FindAllIndex(rb, -1)), rb)
	}
	gotRes, err := res(jobDir, string(b))
	if err != nil {
		fail("result of the job: %v", err)
	}
	if gotRes != wantRes {
		fail("%s differ from the uninterrupted run's: first difference: %s", v.what, firstDiff(wantRes, gotRes))
	}
	t.Logf("%s: job %s resumed from generation 1; %s equal to the uninterrupted run's", a.name, v.id, v.what)
}

// oneLine is the last n lines of s on one line, for a verdict.
func oneLine(s string, n int) string {
	return strings.ReplaceAll(lastLines(s, n), "\n", " | ")
}

// firstDiff names the first line where got differs from want.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d: want %q, got %q (%d lines wanted, %d got)", i+1, wl, gl, len(w), len(g))
		}
	}
	return "none"
}
