// Command bench measures slurm-dmtcp on the running cluster (contrib/cluster/cluster-up.sh)
// with the freshly built plugin, each figure beside its baseline from the same run, and
// prints a table and writes JSON. contrib/bench/bench.sh runs it (make bench); run as root.
//
// It rewrites the cluster's plugstack.conf while it runs (no plugin, plugin unused, a low
// min_interval for periodic checkpoints) and puts the original back at the end.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
)

// memProgram holds MiB of incompressible memory and prints a time-stamped tick every 0.1 s,
// so that the first tick after a restore tells when the application resumed.
const memProgram = `import os, sys, time
buf = bytearray(os.urandom(int(sys.argv[1]) << 20))
print("ready %d" % len(buf), flush=True)
i = 0
while True:
    i += 1
    print("tick %d %.6f" % (i, time.time()), flush=True)
    time.sleep(0.1)
`

// nerscScript is the hand-written way (NERSC's start_coordinator, then dmtcp_launch): a
// coordinator on a free port for this job, the program under dmtcp_launch joined to it.
const nerscScript = `#!/bin/bash
set -e
DMTCP=%s
d=$(mktemp -d /tmp/nersc-bench.XXXXXX)
$DMTCP/bin/dmtcp_coordinator --daemon --exit-on-last -p 0 --port-file "$d/port" --ckptdir "$d" >/dev/null 2>&1
while [ ! -s "$d/port" ]; do sleep 0.01; done
export DMTCP_COORD_HOST=$(hostname) DMTCP_COORD_PORT=$(cat "$d/port")
$DMTCP/bin/dmtcp_launch -j -h "$DMTCP_COORD_HOST" -p "$DMTCP_COORD_PORT" --ckptdir "$d" "$@"
rc=$?
rm -rf "$d"
exit $rc
`

type row struct {
	Name     string  `json:"name"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Baseline float64 `json:"baseline,omitempty"`
	BaseName string  `json:"baseline_name,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
	Samples  int     `json:"samples,omitempty"`
	Note     string  `json:"note,omitempty"`
}

type goBench struct {
	Package string  `json:"package"`
	Name    string  `json:"name"`
	Iters   int64   `json:"iterations"`
	NsPerOp float64 `json:"ns_per_op"`
	MBps    float64 `json:"mb_per_s,omitempty"`
	BPerOp  int64   `json:"bytes_per_op"`
	Allocs  int64   `json:"allocs_per_op"`
}

type report struct {
	Date    string            `json:"date"`
	Machine map[string]string `json:"machine"`
	Config  map[string]string `json:"config"`
	Rows    []row             `json:"results"`
	GoBench []goBench         `json:"go_benchmarks"`
	Errors  []string          `json:"errors,omitempty"`
}

type bench struct {
	clusterDir, conf, plugstack, baseLine string
	dmtcp, repo                           string
	usr                                   *user.User
	uid, gid                              uint32
	groups                                []uint32
	work                                  string
	launchN, startN                       int
	big, quick                            bool
	compressKey                           bool
	factsDB                               string // the node facts cache of the job start figures
	rep                                   report
}

func main() {
	b := &bench{}
	out := flag.String("out", "build/bench.json", "JSON output")
	flag.StringVar(&b.clusterDir, "cluster-dir", envOr("CLUSTER_DIR", "/var/tmp/slurm-dmtcp-cluster"), "cluster folder")
	flag.StringVar(&b.dmtcp, "dmtcp-prefix", envOr("DMTCP_PREFIX", "/opt/dmtcp"), "DMTCP install")
	name := flag.String("user", "sdmtcp", "job user")
	flag.IntVar(&b.launchN, "n", 30, "srun true samples per side")
	flag.IntVar(&b.startN, "start-n", 30, "job start samples per side")
	flag.BoolVar(&b.big, "big", false, "also 1 GiB checkpoints")
	flag.BoolVar(&b.quick, "quick", false, "fewer samples, short Go benchmarks")
	only := flag.String("only", "", "comma-separated parts to run: launch,start,checkpoint,sigterm,probe,gobench,nodes (default all)")
	flag.Parse()
	if b.quick {
		b.launchN, b.startN = min(b.launchN, 10), min(b.startN, 4)
	}
	if os.Geteuid() != 0 {
		fmt.Println("SKIP bench: needs root (it rewrites the cluster's plugstack.conf and submits as a test user)")
		return
	}
	b.repo, _ = os.Getwd()
	b.conf = filepath.Join(b.clusterDir, "slurm.conf")
	b.plugstack = filepath.Join(b.clusterDir, "plugstack.conf")
	line, err := os.ReadFile(b.plugstack)
	check(err, "no cluster in %s: run contrib/cluster/cluster-up.sh", b.clusterDir)
	b.baseLine = strings.TrimSpace(string(line))
	if src, err := os.ReadFile(filepath.Join(b.repo, "spank/config.c")); err == nil {
		b.compressKey = bytes.Contains(src, []byte(`"compress"`))
	}
	b.usr, err = user.Lookup(*name)
	check(err, "user %s", *name)
	b.lookupIDs()
	b.work, err = os.MkdirTemp("/tmp", "sdmtcp-bench-")
	check(err, "work folder")
	check(os.Chown(b.work, int(b.uid), int(b.gid)), "chown")
	check(os.WriteFile(filepath.Join(b.work, "mem.py"), []byte(memProgram), 0o644), "mem.py")
	check(os.WriteFile(filepath.Join(b.work, "nersc.sh"), []byte(fmt.Sprintf(nerscScript, b.dmtcp)), 0o755), "nersc.sh")

	restore := func() { _ = os.WriteFile(b.plugstack, []byte(b.baseLine+"\n"), 0o644); _ = os.RemoveAll(b.work) }
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() { <-sigs; restore(); os.Exit(130) }()
	defer restore()

	b.rep.Date = time.Now().UTC().Format(time.RFC3339)
	b.rep.Machine = machine(b.dmtcp)
	b.rep.Config = map[string]string{"cluster_dir": b.clusterDir, "user": *name, "plugstack": b.baseLine,
		"compression_switch": map[bool]string{true: "plugstack compress=on|off", false: "DMTCP_GZIP=0|1 in the job's environment"}[b.compressKey]}

	steps := []struct {
		key, name string
		f         func() error
	}{
		{"launch", "step launch, plugin unused vs none", b.launchCost},
		{"start", "job start, --dmtcp vs hand-written", b.jobStart},
		{"checkpoint", "checkpoint throughput", b.throughput},
		{"sigterm", "SIGTERM to generation, restart to resumed", b.sigtermRestore},
		{"probe", "node probe memory", b.probeRSS},
		{"gobench", "Go micro-benchmarks", b.goBenchmarks},
		{"nodes", "steps across 1, 2, 4 nodes", b.stepsByNodes},
	}
	_, noDMTCP := os.Stat(filepath.Join(b.dmtcp, "bin", "dmtcp_launch"))
	for _, s := range steps {
		if *only != "" && !strings.Contains(","+*only+",", ","+s.key+",") {
			continue
		}
		if noDMTCP != nil && (s.key == "start" || s.key == "checkpoint" || s.key == "sigterm" || s.key == "nodes") {
			fmt.Printf("SKIP %s: no DMTCP in %s (set DMTCP_PREFIX)\n", s.name, b.dmtcp)
			continue
		}
		b.step(s.name, s.f)
	}

	b.print(os.Stdout)
	if *out != "" {
		_ = os.MkdirAll(filepath.Dir(*out), 0o755)
		js, _ := json.MarshalIndent(b.rep, "", "  ")
		check(os.WriteFile(*out, append(js, '\n'), 0o644), "write %s", *out)
		fmt.Printf("JSON: %s\n", *out)
	}
	if len(b.rep.Errors) > 0 {
		restore()
		os.Exit(1)
	}
}

func (b *bench) step(name string, f func() error) {
	fmt.Fprintf(os.Stderr, "bench: %s ...\n", name)
	t := time.Now()
	if err := f(); err != nil {
		msg := fmt.Sprintf("%s: %v", name, err)
		fmt.Fprintf(os.Stderr, "bench: FAILED %s\n", msg)
		b.rep.Errors = append(b.rep.Errors, msg)
	}
	_ = os.WriteFile(b.plugstack, []byte(b.baseLine+"\n"), 0o644)
	fmt.Fprintf(os.Stderr, "bench: %s done in %s\n", name, time.Since(t).Round(100*time.Millisecond))
}

func (b *bench) add(r row) {
	if r.Baseline != 0 {
		r.Ratio = r.Value / r.Baseline
	}
	b.rep.Rows = append(b.rep.Rows, r)
}

// policy sets the plugin line for what follows: "" = no plugin at all (empty plugstack.conf).
func (b *bench) policy(plugin bool, args string) {
	s := ""
	if plugin {
		s = strings.TrimSpace(b.baseLine+" "+args) + "\n"
	}
	check(os.WriteFile(b.plugstack, []byte(s), 0o644), "plugstack")
}

// 1. The cost to every job that does not use DMTCP: srun true, plugin loaded but unused vs
// no plugin, interleaved so that drift in the machine's load hits both sides alike.
func (b *bench) launchCost() error {
	var with, without []float64
	for i := 0; i < b.launchN; i++ {
		for _, plugin := range []bool{i%2 == 0, i%2 != 0} {
			b.policy(plugin, "")
			d, _, err := b.timed(nil, "srun", "true")
			if err != nil {
				return err
			}
			if plugin {
				with = append(with, d)
			} else {
				without = append(without, d)
			}
		}
	}
	b.add(row{Name: "srun true, plugin loaded but unused", Value: median(with) * 1000, Unit: "ms",
		Baseline: median(without) * 1000, BaseName: "no plugin", Samples: len(with),
		Note: fmt.Sprintf("median; spread (p90-p10) %.1f ms vs %.1f ms; %s", spread(with)*1000, spread(without)*1000, diffNote(with, without))})
	return nil
}

// 2. Job start: srun --dmtcp of a short program vs the same program under the hand-written
// NERSC-style wrapper, and plain srun for reference. Wall time and first output line.
func (b *bench) jobStart() error {
	// Checkpoint folders in the bench's own scratch folder (same file system as the home
	// folders here), removed at the end, like the hand-written wrapper's. The node's facts
	// from the node probe's cache, as on a site that runs it (contrib/systemd): without it
	// the agent collects them at each start.
	extra := "checkpoint_dir=" + b.work + "/ckpt/%j"
	if db, err := b.factsCache(); err != nil {
		fmt.Printf("NOTE job start: no node facts cache (%v): the agent collects the facts at each start\n", err)
	} else {
		extra += " nodeprobe_cache=" + db
		b.factsDB = db
	}
	b.policy(true, extra)
	kinds := []struct {
		name string
		args []string
	}{
		{"--dmtcp", []string{"srun", "--dmtcp", "/bin/echo", "started"}},
		{"hand-written", []string{"srun", filepath.Join(b.work, "nersc.sh"), "/bin/echo", "started"}},
		{"plain", []string{"srun", "/bin/echo", "started"}},
	}
	wall := map[string][]float64{}
	first := map[string][]float64{}
	for i := 0; i < b.startN; i++ {
		for k := range kinds {
			kd := kinds[(k+i)%len(kinds)]
			d, f, err := b.timed(nil, kd.args...)
			if err != nil {
				return fmt.Errorf("%s: %w", kd.name, err)
			}
			wall[kd.name] = append(wall[kd.name], d)
			first[kd.name] = append(first[kd.name], f)
		}
	}
	b.add(row{Name: "job start: srun to first output line, --dmtcp", Value: median(first["--dmtcp"]) * 1000, Unit: "ms",
		Baseline: median(first["hand-written"]) * 1000, BaseName: "hand-written coordinator + dmtcp_launch", Samples: b.startN,
		Note: fmt.Sprintf("%s; plain srun, no DMTCP: %.0f ms", diffNote(first["--dmtcp"], first["hand-written"]), median(first["plain"])*1000)})
	b.add(row{Name: "job start: srun wall time of a short program, --dmtcp", Value: median(wall["--dmtcp"]) * 1000, Unit: "ms",
		Baseline: median(wall["hand-written"]) * 1000, BaseName: "hand-written coordinator + dmtcp_launch", Samples: b.startN,
		Note: fmt.Sprintf("%s; plain srun, no DMTCP: %.0f ms", diffNote(wall["--dmtcp"], wall["hand-written"]), median(wall["plain"])*1000)})
	return b.agentStart()
}

// factsCache records this node's facts with the freshly built node probe into a cache in
// the bench's folder, readable by the job's user, and returns its path.
func (b *bench) factsCache() (string, error) {
	db := filepath.Join(b.work, "nodefacts.db")
	probe := filepath.Join(b.repo, "build", "slurm-dmtcp-nodeprobe")
	if o, err := exec.Command(probe, "--db", db, "--dmtcp-prefix", b.dmtcp, "probe").CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s probe: %v: %s", probe, err, tail(string(o)))
	}
	return db, os.Chmod(db, 0o644)
}

// agentStart isolates the agent's share of the job start, outside Slurm: the agent started
// as the plugin starts it, to its ready message (the tasks may start: the coordinator's
// address is known before it runs) and to its exit at EOF on its lifeline, vs a bare
// dmtcp_coordinator on a free port to its port file and to its exit on dmtcp_command -q.
func (b *bench) agentStart() error {
	agentBin := filepath.Join(b.clusterDir, "bin", "slurm-dmtcp-agent")
	if _, err := os.Stat(agentBin); err != nil {
		fmt.Printf("SKIP agent start: %s not installed by cluster-up.sh\n", agentBin)
		return nil
	}
	var ready, stop, coordReady, coordStop []float64
	for i := 0; i < b.startN; i++ {
		r, s, err := b.agentOnce(agentBin, i)
		if err != nil {
			return err
		}
		ready, stop = append(ready, r), append(stop, s)
		r, s, err = b.coordinatorOnce(i)
		if err != nil {
			return err
		}
		coordReady, coordStop = append(coordReady, r), append(coordStop, s)
	}
	b.add(row{Name: "agent start to ready message: the tasks may start (outside Slurm)", Value: median(ready) * 1000, Unit: "ms",
		Baseline: median(coordReady) * 1000, BaseName: "bare dmtcp_coordinator -p 0 to its port file", Samples: b.startN})
	b.add(row{Name: "agent stop, lifeline EOF to exit (outside Slurm)", Value: median(stop) * 1000, Unit: "ms",
		Baseline: median(coordStop) * 1000, BaseName: "bare dmtcp_command -q to coordinator exit", Samples: b.startN})
	return nil
}

func (b *bench) agentOnce(agentBin string, i int) (ready, stop float64, err error) {
	dir := filepath.Join(b.work, fmt.Sprintf("agent-%d", i))
	args := []string{"--protocol=1", fmt.Sprintf("--job-id=%d", 990000000+i), "--step=0",
		"--checkpoint-dir=" + dir + "/ckpt/%j", "--runtime-dir=" + dir, "--dmtcp-prefix=" + b.dmtcp}
	if b.factsDB != "" {
		args = append(args, "--nodeprobe-cache="+b.factsDB)
	}
	cmd := b.asUser(nil, append([]string{agentBin}, args...)...)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C", "SLURM_CONF=" + b.conf}
	defer os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, 0, err
	}
	_ = os.Chown(dir, int(b.uid), int(b.gid))
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, 0, err
	}
	defer pr.Close()
	cmd.ExtraFiles = []*os.File{pw}
	lifeline, err := cmd.StdinPipe()
	if err != nil {
		return 0, 0, err
	}
	t := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	pw.Close()
	msg := bufio.NewScanner(pr)
	var lines []string
	for msg.Scan() {
		lines = append(lines, msg.Text())
		if msg.Text() == "end" {
			break
		}
	}
	if len(lines) == 0 || lines[0] != "sdmtcp/1 ready" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0, 0, fmt.Errorf("agent: no ready message: %q", lines)
	}
	ready = time.Since(t).Seconds()
	// The ready message comes before the coordinator runs (the tasks' connections wait in
	// its socket's queue): the stop is timed from a running coordinator, as at a step's end.
	for _, l := range lines {
		if d, ok := strings.CutPrefix(l, "rundir="); ok {
			port := filepath.Join(d, "coordinator.port")
			if err := waitForEvery(10*time.Second, 100*time.Microsecond, func() bool { _, err := os.Stat(port); return err == nil }); err != nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				return 0, 0, fmt.Errorf("agent: the coordinator did not run: %w", err)
			}
		}
	}
	t = time.Now()
	lifeline.Close()
	err = cmd.Wait()
	stop = time.Since(t).Seconds()
	if err != nil {
		return 0, 0, fmt.Errorf("agent exit: %v", err)
	}
	return ready, stop, nil
}

func (b *bench) coordinatorOnce(i int) (ready, stop float64, err error) {
	dir := filepath.Join(b.work, fmt.Sprintf("coord-%d", i))
	defer os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, 0, err
	}
	_ = os.Chown(dir, int(b.uid), int(b.gid))
	port := filepath.Join(dir, "port")
	cmd := b.asUser(nil, filepath.Join(b.dmtcp, "bin", "dmtcp_coordinator"), "-q", "-p", "0", "--port-file", port, "--tmpdir", dir)
	stdin, err := cmd.StdinPipe() // held open: at EOF the coordinator spins on its prompt
	if err != nil {
		return 0, 0, err
	}
	defer stdin.Close()
	t := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	var p []byte
	err = waitForEvery(10*time.Second, time.Millisecond, func() bool { p, _ = os.ReadFile(port); return len(bytes.TrimSpace(p)) > 0 })
	ready = time.Since(t).Seconds()
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0, 0, fmt.Errorf("dmtcp_coordinator: no port file: %w", err)
	}
	t = time.Now()
	q := b.asUser(nil, filepath.Join(b.dmtcp, "bin", "dmtcp_command"), "-p", strings.TrimSpace(string(p)), "-q")
	_ = q.Run()
	err = cmd.Wait()
	stop = time.Since(t).Seconds()
	return ready, stop, err
}

type ckptResult struct {
	Gen                        int
	Bytes                      int64
	Files, Procs               int
	DMTCPSec, CommitSec, Total float64
	AgentHWMKiB                int64
}

// 3. Checkpoint throughput: the whole generation (DMTCP writes the images, the agent hashes,
// fsyncs, writes the manifest and renames) for incompressible memory, vs dd with fsync.
func (b *bench) throughput() error {
	type tcase struct {
		procs, mib int
		gzip       bool
	}
	cases := []tcase{{1, 64, false}, {1, 256, false}, {4, 64, false}, {1, 256, true}}
	if b.big {
		cases = append(cases, tcase{1, 1024, false}, tcase{1, 1024, true})
	}
	folder := filepath.Join(b.usr.HomeDir, ".slurm-dmtcp")
	var base *ckptResult
	for _, c := range cases {
		total := c.procs * c.mib
		res, err := b.periodicCheckpoint(c.procs, c.mib, c.gzip)
		if err != nil {
			return fmt.Errorf("%d x %d MiB gzip=%v: %w", c.procs, c.mib, c.gzip, err)
		}
		// The disk's bandwidth for as many bytes as the image, right after it: on a busy
		// machine it drifts from minute to minute.
		imageMiB := int((res.Bytes + 1<<20 - 1) >> 20)
		dd, err := b.ddRate(folder, imageMiB)
		if err != nil {
			return err
		}
		rate := float64(res.Bytes) / res.Total / 1e6
		comp := map[bool]string{true: "gzip", false: "no compression"}[c.gzip]
		b.add(row{Name: fmt.Sprintf("checkpoint %d MiB in %d process(es), %s", total, c.procs, comp), Value: rate, Unit: "MB/s",
			Baseline: dd, BaseName: fmt.Sprintf("dd %d MiB conv=fsync, same folder", imageMiB),
			Note: fmt.Sprintf("image %.0f MB, %d DMTCP processes; DMTCP %.2f s + commit %.2f s = %.2f s; agent peak RSS %d KiB",
				float64(res.Bytes)/1e6, res.Procs, res.DMTCPSec, res.CommitSec, res.Total, res.AgentHWMKiB)})
		if c.procs == 1 && c.mib == 64 && !c.gzip {
			r := res
			base = &r
		}
		if base != nil && !c.gzip && total > 64 {
			b.add(row{Name: fmt.Sprintf("growth: generation time, %d MiB in %d process(es) vs 64 MiB in 1", total, c.procs), Value: res.Total, Unit: "s",
				Baseline: base.Total, BaseName: "64 MiB, 1 process", Note: fmt.Sprintf("memory ratio %.0fx", float64(total)/64)})
		}
		if base != nil && !c.gzip && total > 64 {
			b.add(row{Name: fmt.Sprintf("growth: agent peak RSS, %d MiB in %d process(es) vs 64 MiB in 1", total, c.procs), Value: float64(res.AgentHWMKiB) / 1024, Unit: "MiB",
				Baseline: float64(base.AgentHWMKiB) / 1024, BaseName: "64 MiB, 1 process"})
		}
	}
	return nil
}

// periodicCheckpoint runs a --dmtcp batch job holding procs x mib MiB and returns the figures of
// the first generation that holds all of it.
func (b *bench) periodicCheckpoint(procs, mib int, gzip bool) (ckptResult, error) {
	interval := 4 + mib*procs/128
	extra, env := b.compression(gzip)
	b.policy(true, "min_interval=1 "+extra)
	script := fmt.Sprintf("#!/bin/bash\nfor i in $(seq 1 %d); do /usr/bin/python3 %s/mem.py %d & done\nwait\n", procs, b.work, mib)
	id, out, err := b.sbatch(env, script, "--dmtcp", fmt.Sprintf("--dmtcp-interval=%ds", interval))
	if err != nil {
		return ckptResult{}, err
	}
	defer b.cancel(id)
	stepDir := filepath.Join(b.usr.HomeDir, ".slurm-dmtcp", id, "batch")
	defer os.RemoveAll(filepath.Dir(stepDir))
	want := int64(procs*mib) << 20
	deadline := time.Now().Add(time.Duration(interval*3+120) * time.Second)
	seen := map[string]bool{}
	for time.Now().Before(deadline) {
		gens, _ := filepath.Glob(filepath.Join(stepDir, "gen-*", "MANIFEST.json"))
		for _, m := range gens {
			if seen[m] {
				continue
			}
			seen[m] = true
			size, err := manifestBytes(m)
			if err != nil || size < want {
				continue
			}
			gen, _ := strconv.Atoi(strings.TrimPrefix(filepath.Base(filepath.Dir(m)), "gen-"))
			hwm := agentHWM(stepDir)
			res, err := checkpointLine(filepath.Join(stepDir, "agent.log"), gen)
			res.AgentHWMKiB = hwm
			return res, err
		}
		if st := b.jobState(id); st != "RUNNING" && st != "PENDING" && st != "CONFIGURING" {
			o, _ := os.ReadFile(out)
			return ckptResult{}, fmt.Errorf("job %s ended (%s) before a full checkpoint: %s", id, st, tail(string(o)))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return ckptResult{}, fmt.Errorf("job %s: no generation of %d MiB within the deadline", id, want>>20)
}

// compression returns plugstack arguments and job environment for DMTCP's gzip on or off.
func (b *bench) compression(gzip bool) (string, []string) {
	if b.compressKey {
		return "compress=" + map[bool]string{true: "on", false: "off"}[gzip], nil
	}
	return "", []string{"DMTCP_GZIP=" + map[bool]string{true: "1", false: "0"}[gzip]}
}

// 4. SIGTERM (scontrol requeue) to a verified generation, then the job's restart to the
// application's first tick after the restore.
func (b *bench) sigtermRestore() error {
	const mib = 256
	gen, ours, err := b.sigtermCase(1, mib)
	if err != nil {
		return err
	}
	// Growth with the number of processes: the same memory in 4 processes.
	if _, _, err := b.sigtermCase(4, mib/4); err != nil {
		return err
	}

	// The same program the hand-written way, requeued and restarted by its own script.
	hw, hwCkpt, err := b.handWritten(mib)
	if err != nil {
		return fmt.Errorf("hand-written flow: %w", err)
	}
	b.add(row{Name: fmt.Sprintf("requeued job seen RUNNING to application resumed, %d MiB in 1 process(es)", mib), Value: ours.fromRunning, Unit: "s",
		Baseline: hw.fromRunning, BaseName: "hand-written script: coordinator + dmtcp_restart",
		Note: fmt.Sprintf("ours verifies the generation (sha256) first; from release, scheduling included: %.2f s vs %.2f s", ours.total, hw.total)})
	b.add(row{Name: fmt.Sprintf("SIGTERM checkpoint, %d MiB in 1 process(es), whole generation", mib), Value: gen.Total, Unit: "s",
		Baseline: hwCkpt, BaseName: "hand-written dmtcp_command -bc, images only (no hash, fsync, manifest)",
		Note: fmt.Sprintf("DMTCP %.2f s + commit %.2f s", gen.DMTCPSec, gen.CommitSec)})
	return nil
}

// sigtermCase runs a --dmtcp batch job holding procs x mib MiB of memory, requeues it, and
// adds the time from the SIGTERM to a verified generation and from the job's restart to
// the application resumed.
func (b *bench) sigtermCase(procs, mib int) (ckptResult, resume, error) {
	extra, env := b.compression(false)
	b.policy(true, extra)
	script := fmt.Sprintf("#!/bin/bash\n#SBATCH --open-mode=append\nfor i in $(seq 1 %d); do /usr/bin/python3 %s/mem.py %d & done\nwait\n",
		procs, b.work, mib)
	id, out, err := b.sbatch(env, script, "--dmtcp", "--dmtcp-interval=0")
	if err != nil {
		return ckptResult{}, resume{}, err
	}
	defer b.cancel(id)
	stepDir := filepath.Join(b.usr.HomeDir, ".slurm-dmtcp", id, "batch")
	defer os.RemoveAll(filepath.Dir(stepDir))
	err = waitFor(90*time.Second, func() bool {
		o, _ := os.ReadFile(out)
		return bytes.Count(o, []byte("ready ")) == procs && bytes.Contains(o, []byte("tick 5 "))
	})
	if err != nil {
		return ckptResult{}, resume{}, fmt.Errorf("job %s never ran its program: %w", id, err)
	}
	manifest, tGen, err := b.requeueForGeneration(id, stepDir)
	if err != nil {
		return ckptResult{}, resume{}, err
	}
	size, _ := manifestBytes(manifest)
	genNo, _ := strconv.Atoi(strings.TrimPrefix(filepath.Base(filepath.Dir(manifest)), "gen-"))
	gen, err := checkpointLine(filepath.Join(stepDir, "agent.log"), genNo)
	if err != nil {
		return gen, resume{}, err
	}
	what := fmt.Sprintf("%d MiB in %d process(es)", procs*mib, procs)
	b.add(row{Name: "SIGTERM (scontrol requeue) to verified generation, " + what, Value: tGen, Unit: "s",
		Baseline: b.killWait(), BaseName: "KillWait of the cluster (the window Slurm leaves)",
		Note: fmt.Sprintf("image %.0f MB, no compression", float64(size)/1e6)})
	r, err := b.resumeAfterRequeue(id, out, procs)
	if err != nil {
		return gen, r, err
	}
	if procs > 1 {
		b.add(row{Name: "requeued job seen RUNNING to application resumed, " + what, Value: r.fromRunning, Unit: "s",
			Note: fmt.Sprintf("from release, scheduling included: %.2f s", r.total)})
	}
	return gen, r, nil
}

// requeueForGeneration requeues a job (Slurm's SIGTERM) and waits for the first generation
// of its step folder: the manifest's path and the seconds it took.
func (b *bench) requeueForGeneration(id, stepDir string) (string, float64, error) {
	t0 := time.Now()
	if o, err := b.slurm("scontrol", "requeue", id); err != nil {
		return "", 0, fmt.Errorf("requeue: %v: %s", err, o)
	}
	var manifest string
	err := waitFor(60*time.Second, func() bool {
		m, _ := filepath.Glob(filepath.Join(stepDir, "gen-*", "MANIFEST.json"))
		if len(m) > 0 {
			manifest = m[0]
		}
		return manifest != ""
	})
	if err != nil {
		return "", 0, fmt.Errorf("job %s: no generation in %s after SIGTERM (%.0f s): %w", id, stepDir, time.Since(t0).Seconds(), err)
	}
	return manifest, time.Since(t0).Seconds(), nil
}

type resume struct{ total, fromRunning float64 }

// resumeAfterRequeue makes a requeued job start at once and waits for the application's
// first tick after that: the time from release, and from the job seen RUNNING.
func (b *bench) resumeAfterRequeue(id, out string, procs int) (resume, error) {
	if err := waitFor(60*time.Second, func() bool { return b.jobState(id) == "PENDING" }); err != nil {
		return resume{}, fmt.Errorf("job %s not pending after requeue: %w", id, err)
	}
	// slurmd refuses ("Job credential revoked") a batch job whose new credential is from the
	// same second as the kill of its previous run: release it a second later.
	time.Sleep(1200 * time.Millisecond)
	t1 := time.Now()
	var tRun time.Time
	var resumed float64
	ended := ""
	err := waitFor(120*time.Second, func() bool {
		if tRun.IsZero() {
			switch st := b.jobState(id); st {
			case "PENDING":
				_, _ = b.slurm("scontrol", "update", "JobId="+id, "StartTime=now")
			case "RUNNING":
				tRun = time.Now()
			default:
				ended = st
				return true
			}
		}
		resumed = firstTickAfter(out, float64(t1.UnixNano())/1e9)
		return resumed > 0
	})
	if ended != "" {
		err = fmt.Errorf("it ended (%s) instead of running again", ended)
	}
	if err != nil {
		o, _ := os.ReadFile(out)
		e, _ := os.ReadFile(out + ".err")
		return resume{}, fmt.Errorf("job %s did not resume (%s): %w: %s\nerror output: %s", id, b.jobState(id), err, tail(string(o)), tail(string(e)))
	}
	if o, _ := os.ReadFile(out); bytes.Count(o, []byte("ready ")) > procs {
		return resume{}, fmt.Errorf("job %s started its program again instead of restoring it", id)
	}
	r := resume{total: resumed - float64(t1.UnixNano())/1e9}
	if !tRun.IsZero() {
		r.fromRunning = resumed - float64(tRun.UnixNano())/1e9
	}
	return r, nil
}

// stepMiB is what each task of the steps across nodes holds.
const stepMiB = 64

// 6. Steps across nodes: srun -N k -n 2k --dmtcp in a batch job (not itself under DMTCP),
// each task holding stepMiB MiB, requeued: SIGTERM to the verified generation of the whole
// step, and the job's restart to the step resumed (its first output after the restore), for k = 1, 2, 4 as far as the cluster
// has nodes (make cluster-up NODES=4). Ratios are to the step on one node.
func (b *bench) stepsByNodes() error {
	o, err := b.slurm("sinfo", "-h", "-N", "-o", "%N")
	if err != nil {
		return fmt.Errorf("sinfo: %v: %s", err, o)
	}
	have := len(strings.Fields(o))
	var one ckptResult
	var oneResume resume
	for _, k := range []int{1, 2, 4} {
		if k > have {
			fmt.Printf("SKIP steps across %d nodes: the cluster has %d (make cluster-up NODES=4)\n", k, have)
			continue
		}
		gen, r, err := b.stepCase(k)
		if err != nil {
			return fmt.Errorf("%d node(s): %w", k, err)
		}
		what := fmt.Sprintf("step on %d node(s), %d tasks x %d MiB", k, 2*k, stepMiB)
		ckpt := row{Name: "SIGTERM checkpoint, whole generation, " + what, Value: gen.Total, Unit: "s",
			Note: fmt.Sprintf("DMTCP %.2f s + commit %.2f s, %d processes, %.0f MB", gen.DMTCPSec, gen.CommitSec, gen.Procs, float64(gen.Bytes)/1e6)}
		rest := row{Name: "requeued job seen RUNNING to the step resumed, " + what, Value: r.fromRunning, Unit: "s",
			Note: fmt.Sprintf("from release, scheduling included: %.2f s", r.total)}
		if k == 1 {
			one, oneResume = gen, r
		} else if one.Total > 0 {
			ckpt.Baseline, ckpt.BaseName = one.Total, "the same per task on 1 node"
			rest.Baseline, rest.BaseName = oneResume.fromRunning, "the same per task on 1 node"
		}
		b.add(ckpt)
		b.add(rest)
	}
	return nil
}

// stepCase runs one step across k nodes (2 tasks per node), requeues the job once every
// task ticks, and measures the step's SIGTERM checkpoint and the restore of every task.
func (b *bench) stepCase(k int) (ckptResult, resume, error) {
	b.policy(true, "")
	tasks := 2 * k
	script := fmt.Sprintf("#!/bin/bash\n#SBATCH -N%d --ntasks-per-node=2 --open-mode=append --requeue\nsrun -N%d -n%d --dmtcp --dmtcp-interval=0 /usr/bin/python3 %s/mem.py %d\n",
		k, k, tasks, b.work, stepMiB)
	id, out, err := b.sbatch(nil, script)
	if err != nil {
		return ckptResult{}, resume{}, err
	}
	defer b.cancel(id)
	stepDir := filepath.Join(b.usr.HomeDir, ".slurm-dmtcp", id, "step-0")
	defer os.RemoveAll(filepath.Dir(stepDir))
	err = waitFor(120*time.Second, func() bool {
		o, _ := os.ReadFile(out)
		return bytes.Count(o, []byte("ready ")) == tasks && bytes.Count(o, []byte("tick 5 ")) == tasks
	})
	if err != nil {
		o, _ := os.ReadFile(out)
		return ckptResult{}, resume{}, fmt.Errorf("job %s never ran its %d tasks: %w: %s", id, tasks, err, tail(string(o)))
	}
	manifest, _, err := b.requeueForGeneration(id, stepDir)
	if err != nil {
		return ckptResult{}, resume{}, err
	}
	genNo, _ := strconv.Atoi(strings.TrimPrefix(filepath.Base(filepath.Dir(manifest)), "gen-"))
	gen, err := checkpointLine(filepath.Join(stepDir, "agent.log"), genNo)
	if err != nil {
		return gen, resume{}, err
	}
	r, err := b.resumeAfterRequeue(id, out, tasks)
	return gen, r, err
}

// handWrittenJob is the NERSC way in one batch script: a coordinator on a free port for the
// job, then dmtcp_restart when images exist, else dmtcp_launch. Checkpoints are requested
// from outside with dmtcp_command.
const handWrittenJob = `#!/bin/bash
#SBATCH --open-mode=append
DMTCP=%s
ck=%s/$SLURM_JOB_ID
mkdir -p "$ck"
rm -f "$ck/port"
$DMTCP/bin/dmtcp_coordinator --daemon --exit-on-last -p 0 --port-file "$ck/port" --ckptdir "$ck" >/dev/null 2>&1
while [ ! -s "$ck/port" ]; do sleep 0.01; done
h=$(hostname); p=$(cat "$ck/port")
echo "$h $p" > "$ck/coord"
if ls "$ck"/ckpt_*.dmtcp >/dev/null 2>&1; then
	$DMTCP/bin/dmtcp_restart -j -h "$h" -p "$p" "$ck"/ckpt_*.dmtcp
else
	$DMTCP/bin/dmtcp_launch -j -h "$h" -p "$p" --ckptdir "$ck" --no-gzip /usr/bin/python3 %s/mem.py %d
fi
`

// handWritten runs the hand-written flow: checkpoint (timed), requeue, restart.
func (b *bench) handWritten(mib int) (resume, float64, error) {
	b.policy(true, "")
	base := filepath.Join(b.usr.HomeDir, ".slurm-dmtcp-bench")
	if err := os.MkdirAll(base, 0o700); err != nil {
		return resume{}, 0, err
	}
	_ = os.Chown(base, int(b.uid), int(b.gid))
	defer os.RemoveAll(base)
	id, out, err := b.sbatch(nil, fmt.Sprintf(handWrittenJob, b.dmtcp, base, b.work, mib))
	if err != nil {
		return resume{}, 0, err
	}
	defer b.cancel(id)
	if err := waitFor(90*time.Second, func() bool { o, _ := os.ReadFile(out); return bytes.Contains(o, []byte("tick 5 ")) }); err != nil {
		return resume{}, 0, fmt.Errorf("job %s never ran its program: %w", id, err)
	}
	coord, err := os.ReadFile(filepath.Join(base, id, "coord"))
	f := strings.Fields(string(coord))
	if err != nil || len(f) != 2 {
		return resume{}, 0, fmt.Errorf("job %s: no coordinator address (%v)", id, err)
	}
	t := time.Now()
	cmd := b.asUser(nil, filepath.Join(b.dmtcp, "bin", "dmtcp_command"), "-h", f[0], "-p", f[1], "-bc")
	if o, err := cmd.CombinedOutput(); err != nil {
		return resume{}, 0, fmt.Errorf("dmtcp_command -bc: %v: %s", err, o)
	}
	ckpt := time.Since(t).Seconds()
	if o, err := b.slurm("scontrol", "requeue", id); err != nil {
		return resume{}, 0, fmt.Errorf("requeue: %v: %s", err, o)
	}
	r, err := b.resumeAfterRequeue(id, out, 1)
	return r, ckpt, err
}

// 5. Peak RSS of the node probe's probe and check commands.
func (b *bench) probeRSS() error {
	probe := filepath.Join(b.repo, "build", "slurm-dmtcp-nodeprobe")
	if _, err := os.Stat(probe); err != nil {
		fmt.Println("SKIP node probe memory: build/slurm-dmtcp-nodeprobe not built")
		return nil
	}
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		fmt.Println("SKIP node probe memory: /usr/bin/time (GNU time) not installed")
		return nil
	}
	db := filepath.Join(b.work, "facts.db")
	args := []string{"--db", db, "--dmtcp-prefix", b.dmtcp}
	out, kib, err := maxRSS(probe, append(args, "probe", "--json")...)
	if err != nil {
		return fmt.Errorf("probe: %v: %s", err, out)
	}
	b.add(row{Name: "nodeprobe probe: peak RSS", Value: float64(kib) / 1024, Unit: "MiB"})
	facts, _, err := maxRSS(probe, append(args, "show", "--json")...)
	if err != nil {
		return fmt.Errorf("show: %v: %s", err, facts)
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(facts), &obj); err != nil {
		return fmt.Errorf("show --json: %v", err)
	}
	if f, ok := obj["facts"].(map[string]any); ok {
		obj = f
	}
	m, _ := json.Marshal(map[string]any{"node_facts": obj})
	mf := filepath.Join(b.work, "manifest.json")
	_ = os.WriteFile(mf, m, 0o644)
	out, kib, err = maxRSS(probe, append(args, "check", mf)...)
	if err != nil {
		return fmt.Errorf("check: %v: %s", err, out)
	}
	b.add(row{Name: "nodeprobe check: peak RSS", Value: float64(kib) / 1024, Unit: "MiB"})
	return nil
}

// 6. The Go micro-benchmarks of the generation store and the node probe.
func (b *bench) goBenchmarks() error {
	args := []string{"test", "-run", "^$", "-bench", ".", "-benchmem"}
	if b.quick {
		args = append(args, "-benchtime", "200ms")
	}
	args = append(args, "./agent/generations/", "./nodeprobe/...")
	cmd := exec.Command("go", args...)
	cmd.Dir = b.repo
	o, err := cmd.CombinedOutput()
	pkg := ""
	re := regexp.MustCompile(`^(Benchmark\S+)\s+(\d+)\s+([\d.]+) ns/op(?:\s+([\d.]+) MB/s)?(?:\s+(\d+) B/op)?(?:\s+(\d+) allocs/op)?`)
	for _, l := range strings.Split(string(o), "\n") {
		if strings.HasPrefix(l, "pkg: ") {
			pkg = strings.TrimPrefix(l, "pkg: ")
		}
		m := re.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		g := goBench{Package: pkg, Name: m[1]}
		g.Iters, _ = strconv.ParseInt(m[2], 10, 64)
		g.NsPerOp, _ = strconv.ParseFloat(m[3], 64)
		g.MBps, _ = strconv.ParseFloat(m[4], 64)
		g.BPerOp, _ = strconv.ParseInt(m[5], 10, 64)
		g.Allocs, _ = strconv.ParseInt(m[6], 10, 64)
		b.rep.GoBench = append(b.rep.GoBench, g)
	}
	if err != nil {
		return fmt.Errorf("go test -bench: %v\n%s", err, tail(string(o)))
	}
	return nil
}

// --- running things ---

func (b *bench) lookupIDs() {
	uid, _ := strconv.Atoi(b.usr.Uid)
	gid, _ := strconv.Atoi(b.usr.Gid)
	b.uid, b.gid = uint32(uid), uint32(gid)
	gs, _ := b.usr.GroupIds()
	for _, g := range gs {
		n, _ := strconv.Atoi(g)
		b.groups = append(b.groups, uint32(n))
	}
}

// asUser builds a command that runs as the job user, with a clean login-like environment.
func (b *bench) asUser(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = b.work
	cmd.Env = append([]string{"HOME=" + b.usr.HomeDir, "USER=" + b.usr.Username, "LOGNAME=" + b.usr.Username,
		"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C", "SLURM_CONF=" + b.conf}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: b.uid, Gid: b.gid, Groups: b.groups}}
	return cmd
}

// timed runs a command as the job user and returns its wall time and the time to its first
// byte of output, in seconds.
func (b *bench) timed(env []string, args ...string) (wall, first float64, err error) {
	cmd := b.asUser(env, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	t := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	r := bufio.NewReader(pipe)
	if _, err := r.ReadByte(); err == nil {
		first = time.Since(t).Seconds()
	}
	_, _ = io.Copy(io.Discard, r)
	err = cmd.Wait()
	wall = time.Since(t).Seconds()
	if err != nil {
		return 0, 0, fmt.Errorf("%v: %v: %s", args, err, stderr.String())
	}
	if first == 0 {
		first = wall
	}
	return wall, first, nil
}

func (b *bench) sbatch(env []string, script string, args ...string) (id, out string, err error) {
	f, err := os.CreateTemp(b.work, "job-*.sh")
	if err != nil {
		return "", "", err
	}
	_, _ = f.WriteString(script)
	f.Close()
	_ = os.Chmod(f.Name(), 0o755)
	out = strings.TrimSuffix(f.Name(), ".sh") + ".out"
	cmd := b.asUser(env, append(append([]string{"sbatch", "--parsable", "-o", out, "-e", out + ".err"}, args...), f.Name())...)
	o, err := cmd.CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("sbatch: %v: %s", err, o)
	}
	id = strings.SplitN(strings.TrimSpace(string(o)), ";", 2)[0]
	if _, err := strconv.Atoi(id); err != nil {
		return "", "", fmt.Errorf("sbatch printed %q", o)
	}
	return id, out, nil
}

func (b *bench) slurm(args ...string) (string, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "SLURM_CONF="+b.conf)
	o, err := cmd.CombinedOutput()
	return string(o), err
}

// jobState is the job's JobState= (scontrol show job -o), GONE when Slurm no longer knows it.
func (b *bench) jobState(id string) string {
	o, _ := b.slurm("scontrol", "show", "job", "-o", id)
	if v := slurm.ParseRecord(o).Value("JobState"); v != "" {
		return v
	}
	return "GONE"
}

// killWait is the cluster's KillWait in seconds (scontrol show config).
func (b *bench) killWait() float64 {
	o, _ := b.slurm("scontrol", "show", "config")
	m := regexp.MustCompile(`(?m)^KillWait\s*=\s*(\d+)`).FindStringSubmatch(o)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return float64(n)
}

// cancel ends a job at once (SIGKILL: no checkpoint on the way out) and waits until it is gone.
func (b *bench) cancel(id string) {
	_, _ = b.slurm("scancel", "--full", "--signal=KILL", id)
	_, _ = b.slurm("scancel", id)
	_ = waitFor(60*time.Second, func() bool {
		switch b.jobState(id) {
		case "RUNNING", "PENDING", "CONFIGURING", "COMPLETING":
			return false
		}
		return true
	})
}

// ddRate is the disk's own write bandwidth in MB/s for mib MiB with fsync, in folder
// (median of three).
func (b *bench) ddRate(folder string, mib int) (float64, error) {
	tmp := filepath.Join(folder, ".bench-dd")
	defer os.Remove(tmp)
	var r []float64
	for i := 0; i < 3; i++ {
		t := time.Now()
		o, err := exec.Command("dd", "if=/dev/zero", "of="+tmp, "bs=1M", fmt.Sprintf("count=%d", mib), "conv=fsync").CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("dd: %v: %s", err, o)
		}
		r = append(r, float64(int64(mib)<<20)/time.Since(t).Seconds()/1e6)
		_ = os.Remove(tmp)
	}
	return median(r), nil
}

// maxRSS runs a command (as root) under /usr/bin/time and returns its output and peak RSS in
// KiB. Not from this process's wait4: Go starts children with CLONE_VM, and Linux then counts
// this process's own peak into the child's ru_maxrss.
func maxRSS(name string, args ...string) (string, int64, error) {
	f, err := os.CreateTemp("", "bench-rss-")
	if err != nil {
		return "", 0, err
	}
	f.Close()
	defer os.Remove(f.Name())
	cmd := exec.Command("/usr/bin/time", append([]string{"-f", "%M", "-o", f.Name(), name}, args...)...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err = cmd.Run()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) && ee.ExitCode() == 3 {
		err = nil // check: incompatible is an answer, not a failure
	}
	b, _ := os.ReadFile(f.Name())
	lines := strings.Fields(string(b))
	var kib int64
	if len(lines) > 0 {
		kib, _ = strconv.ParseInt(lines[len(lines)-1], 10, 64)
	}
	return out.String(), kib, err
}

// --- reading the agent's records ---

func manifestBytes(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var m struct {
		Files []struct {
			Size int64 `json:"size"`
		} `json:"files"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return 0, err
	}
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n, nil
}

var logKV = regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S+)`)

// logFields parses one logrus text line into its key=value pairs.
func logFields(line string) map[string]string {
	m := map[string]string{}
	for _, kv := range logKV.FindAllStringSubmatch(line, -1) {
		v := kv[2]
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		}
		m[kv[1]] = v
	}
	return m
}

// checkpointLine finds the agent's "checkpoint written" line of a generation.
func checkpointLine(log string, gen int) (ckptResult, error) {
	var r ckptResult
	err := waitFor(10*time.Second, func() bool {
		b, _ := os.ReadFile(log)
		for _, l := range strings.Split(string(b), "\n") {
			f := logFields(l)
			if f["msg"] != "checkpoint written" || f["generation"] != strconv.Itoa(gen) {
				continue
			}
			r.Gen = gen
			r.Bytes, _ = strconv.ParseInt(f["bytes"], 10, 64)
			r.Files, _ = strconv.Atoi(f["files"])
			r.Procs, _ = strconv.Atoi(f["processes"])
			d, _ := time.ParseDuration(f["checkpoint_duration"])
			c, _ := time.ParseDuration(f["duration"])
			r.DMTCPSec, r.CommitSec = d.Seconds(), c.Seconds()
			r.Total = r.DMTCPSec + r.CommitSec
			return true
		}
		return false
	})
	if err != nil {
		return r, fmt.Errorf("%s: no 'checkpoint written' line for generation %d", log, gen)
	}
	return r, nil
}

// agentHWM reads the peak RSS (VmHWM, KiB) of the step's agent, still running.
func agentHWM(stepDir string) int64 {
	b, _ := os.ReadFile(filepath.Join(stepDir, "agent.log"))
	pid := ""
	for _, l := range strings.Split(string(b), "\n") {
		if f := logFields(l); f["msg"] == "agent starting" {
			pid = f["pid"]
		}
	}
	st, err := os.ReadFile("/proc/" + pid + "/status")
	if pid == "" || err != nil {
		return 0
	}
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// firstTickAfter returns the time stamp of the first tick printed after t, or 0.
func firstTickAfter(out string, t float64) float64 {
	b, _ := os.ReadFile(out)
	for _, l := range strings.Split(string(b), "\n") {
		var n int
		var ts float64
		if _, err := fmt.Sscanf(l, "tick %d %f", &n, &ts); err == nil && ts > t {
			return ts
		}
	}
	return 0
}

// --- the machine and the table ---

func machine(dmtcp string) map[string]string {
	m := map[string]string{"cpus": strconv.Itoa(runtime.NumCPU()), "go": runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m["memory"] = strings.Join(strings.Fields(strings.SplitN(string(b), "\n", 2)[0])[1:], " ")
	}
	if o, err := exec.Command("uname", "-r").Output(); err == nil {
		m["kernel"] = strings.TrimSpace(string(o))
	}
	if o, err := exec.Command("sinfo", "-V").Output(); err == nil {
		m["slurm"] = strings.TrimSpace(string(o))
	}
	if o, err := exec.Command(filepath.Join(dmtcp, "bin", "dmtcp_launch"), "--version").CombinedOutput(); err == nil {
		m["dmtcp"] = strings.TrimSpace(strings.SplitN(string(o), "\n", 2)[0])
	}
	if o, err := exec.Command("uptime").Output(); err == nil {
		m["load_at_start"] = strings.TrimSpace(string(o))
	}
	return m
}

func (b *bench) print(w io.Writer) {
	fmt.Fprintf(w, "\nslurm-dmtcp bench, %s, %s cpus (%s), %s, %s, %s\n", b.rep.Date, b.rep.Machine["cpus"], b.rep.Machine["cpu"],
		b.rep.Machine["kernel"], b.rep.Machine["slurm"], b.rep.Machine["dmtcp"])
	fmt.Fprintf(w, "%-74s %12s %12s %7s  %s\n", "measure", "value", "baseline", "ratio", "baseline is / notes")
	for _, r := range b.rep.Rows {
		base, ratio := "", ""
		if r.Baseline != 0 {
			base = fmt.Sprintf("%.2f %s", r.Baseline, r.Unit)
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		note := strings.TrimSpace(r.BaseName + "; " + r.Note)
		note = strings.Trim(note, "; ")
		fmt.Fprintf(w, "%-74s %12s %12s %7s  %s\n", r.Name, fmt.Sprintf("%.2f %s", r.Value, r.Unit), base, ratio, note)
	}
	if len(b.rep.GoBench) > 0 {
		fmt.Fprintf(w, "\nGo micro-benchmarks\n")
		for _, g := range b.rep.GoBench {
			mb := ""
			if g.MBps > 0 {
				mb = fmt.Sprintf("%.1f MB/s", g.MBps)
			}
			fmt.Fprintf(w, "%-60s %14.0f ns/op %14s %10d B/op %8d allocs/op\n", g.Name, g.NsPerOp, mb, g.BPerOp, g.Allocs)
		}
	}
	for _, e := range b.rep.Errors {
		fmt.Fprintf(w, "FAILED %s\n", e)
	}
}

// --- small helpers ---

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// pairedDiff is the median of a[i]-b[i] (samples taken side by side, round i) and its 95 %
// bootstrap interval (2000 resamples, a fixed seed: the same samples give the same figures).
func pairedDiff(a, b []float64) (med, lo, hi float64) {
	n := min(len(a), len(b))
	if n == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	d := make([]float64, n)
	for i := range d {
		d[i] = a[i] - b[i]
	}
	rng := rand.New(rand.NewPCG(1, 2))
	meds := make([]float64, 2000)
	r := make([]float64, n)
	for k := range meds {
		for i := range r {
			r[i] = d[rng.IntN(n)]
		}
		meds[k] = median(r)
	}
	sort.Float64s(meds)
	return median(d), meds[len(meds)*25/1000], meds[len(meds)*975/1000]
}

// diffNote says a paired difference in ms, and whether it is measurable (its 95 % interval
// leaves out 0).
func diffNote(a, b []float64) string {
	med, lo, hi := pairedDiff(a, b)
	verdict := "no measurable difference"
	if lo > 0 {
		verdict = "measurably slower"
	} else if hi < 0 {
		verdict = "measurably faster"
	}
	return fmt.Sprintf("paired difference %+.1f ms (95 %% interval %+.1f to %+.1f ms): %s", med*1000, lo*1000, hi*1000, verdict)
}

func spread(v []float64) float64 {
	if len(v) < 2 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)*9/10] - s[len(s)/10]
}

func waitFor(d time.Duration, ok func() bool) error {
	return waitForEvery(d, 50*time.Millisecond, ok)
}

func waitForEvery(d, every time.Duration, ok func() bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for !ok() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("not within %s", d)
		case <-time.After(every):
		}
	}
	return nil
}

func tail(s string) string {
	if len(s) > 600 {
		return "..." + s[len(s)-600:]
	}
	return s
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func check(err error, format string, a ...any) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %s: %v\n", fmt.Sprintf(format, a...), err)
		os.Exit(1)
	}
}
