package agent

// Steps across nodes (srun -N2 --dmtcp outside a --dmtcp batch job). Every node's slurmstepd
// starts an agent. The agent of node 0 (the leader) runs the step's one coordinator, takes
// every checkpoint and commits every generation; it tells the agents of the other nodes (the
// members) where this run's coordinator is through coordinator.addr in the step's checkpoint
// folder, which the nodes share. Members start no coordinator and commit nothing: they pass
// the leader's address to their tasks, and on Slurm's SIGTERM mark their runtime folder so
// that their task launchers end the way the leader's do. Each task writes its images into
// rank-<SLURM_PROCID>/ of the checkpoint folder, so each rank is restored from its own images
// on whichever node it lands.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/atomicfile"
	"github.com/slurm-dmtcp/slurm-dmtcp/coordinator"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto/manifest"
)

// AcrossNodes reports whether this is an srun step that spans several nodes.
func (c Config) AcrossNodes() bool { return c.Step != "batch" && c.Nodes > 1 }

// PerRank reports whether each task of this step keeps its images apart, in rank-<R>/
// folders, and is restored from its own: every srun step of more than one task, on one node
// or several. (A step's tasks on one node restored from one shared set of images would each
// restore every process of the step.)
func (c Config) PerRank() bool { return c.Step != "batch" && (c.Nodes > 1 || c.StepTasks > 1) }

// Member reports whether this agent is one of the other nodes of a step across nodes: no
// coordinator, no checkpoint, no generation of its own.
func (c Config) Member() bool { return c.AcrossNodes() && c.NodeID > 0 }

// CoordAddr is the content of coordinator.addr: which run of which step it belongs to, and
// where that run's coordinator is (or why the leader failed), with what the tasks need to
// know about the run (what to restore, compression).
type CoordAddr struct {
	JobID        string
	Step         string
	RestartCount int
	Run          string // unique per run of the leader: its pid and start time
	Host         string
	Port         int
	Error        string     // the leader failed before ready: members fail with this
	Extra        []proto.KV // restore, restore_note, compress
}

// coordAddrExtra are the ready-message keys the leader hands on to the members.
var coordAddrExtra = map[string]bool{proto.KeyRestore: true, proto.KeyRestoreNote: true, proto.KeyCompress: true}

// Marshal is one key=value per line.
func (c CoordAddr) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "job_id=%s\nstep=%s\nrestart_count=%d\nrun=%s\n", c.JobID, c.Step, c.RestartCount, c.Run)
	if c.Error != "" {
		fmt.Fprintf(&b, "error=%s\n", oneLine(c.Error))
	} else {
		fmt.Fprintf(&b, "coord_host=%s\ncoord_port=%d\n", c.Host, c.Port)
	}
	for _, kv := range c.Extra {
		if coordAddrExtra[kv.Key] {
			fmt.Fprintf(&b, "%s=%s\n", kv.Key, oneLine(kv.Value))
		}
	}
	return b.Bytes()
}

func oneLine(s string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(s) }

// ParseCoordAddr reads what Marshal wrote.
func ParseCoordAddr(data []byte) (CoordAddr, error) {
	var c CoordAddr
	var port string
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return c, fmt.Errorf("malformed line %q", line)
		}
		seen[k] = true
		switch k {
		case "job_id":
			c.JobID = v
		case "step":
			c.Step = v
		case "restart_count":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return c, fmt.Errorf("restart_count=%q: want a number", v)
			}
			c.RestartCount = n
		case "run":
			c.Run = v
		case "error":
			c.Error = v
		case proto.KeyCoordHost:
			c.Host = v
		case proto.KeyCoordPort:
			port = v
		default:
			if coordAddrExtra[k] {
				c.Extra = append(c.Extra, proto.KV{Key: k, Value: v})
			}
		}
	}
	for _, k := range []string{"job_id", "step", "restart_count", "run"} {
		if !seen[k] {
			return c, fmt.Errorf("missing %s", k)
		}
	}
	if c.Error != "" {
		return c, nil
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 || c.Host == "" {
		return c, fmt.Errorf("coordinator address %q:%q incomplete or invalid", c.Host, port)
	}
	c.Port = p
	return c, nil
}

// WriteCoordAddr replaces <stepDir>/coordinator.addr atomically (temporary file, fsync,
// rename), mode 0600.
func WriteCoordAddr(stepDir string, c CoordAddr) error {
	return atomicfile.Write(stepDir, proto.CoordAddrFile, c.Marshal(), true)
}

// WaitCoordAddr waits until <stepDir>/coordinator.addr belongs to this run of the step (same
// job, step and restart count): a file an earlier run left is not this run's. It returns the
// leader's error as an error.
func WaitCoordAddr(ctx context.Context, stepDir, jobID, step string, restartCount int, every time.Duration) (CoordAddr, error) {
	p := filepath.Join(stepDir, proto.CoordAddrFile)
	var last error
	for {
		if b, err := os.ReadFile(p); err == nil {
			c, perr := ParseCoordAddr(b)
			switch {
			case perr != nil:
				last = fmt.Errorf("%s: %w", p, perr)
			case c.JobID != jobID || c.Step != step || c.RestartCount != restartCount:
				last = fmt.Errorf("%s is from another run (job %s step %s restart %d)", p, c.JobID, c.Step, c.RestartCount)
			case c.Error != "":
				return c, fmt.Errorf("node 0 of the step failed: %s", c.Error)
			default:
				return c, nil
			}
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return CoordAddr{}, fmt.Errorf("node 0 of the step did not publish its coordinator in %s (%v): %w", p, last, ctx.Err())
		case <-time.After(every):
		}
	}
}

// memberWait bounds a member's wait for the leader's coordinator; the plugin's agent_timeout
// usually ends it first.
const memberWait = 5 * time.Minute

// runMember is the agent of a node other than node 0 of a step across nodes.
func runMember(cfg Config, layout Layout, log *logrus.Entry, ready io.Writer, lifeline io.Reader) error {
	ctx, cancel := context.WithTimeout(context.Background(), memberWait)
	addr, err := WaitCoordAddr(ctx, layout.StepDir, cfg.JobID, cfg.Step, cfg.RestartCount, 20*time.Millisecond)
	cancel()
	if err != nil {
		log.WithError(err).Error("no coordinator for this node")
		_ = removeRunDir(layout.RunDir)
		_ = proto.WriteError(ready, err.Error())
		return &Error{Code: ExitCoordinator, Err: err}
	}
	kvs := append(readyKVs(addr.Host, addr.Port, layout), proto.KV{Key: proto.KeyPerRank, Value: "1"})
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := proto.WriteReady(ready, append(kvs, addr.Extra...)); err != nil {
		return fmt.Errorf("tell the plugin we are ready: %w", err)
	}
	log.WithFields(logrus.Fields{"coord_host": addr.Host, "coord_port": addr.Port, "run": addr.Run,
		"node_id": cfg.NodeID}).Info("joined the step's coordinator on node 0")
	stop := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, lifeline)
		close(stop)
	}()
	stopping := false
	for {
		select {
		case <-stop:
			why := tasksEnded(layout.RunDir, cfg.Tasks)
			if stopping {
				why = "stopped by Slurm"
			}
			log.WithField("unfinished", why).Info("tasks of this node ended")
			if err := atomicfile.Write(layout.StepDir, proto.NodeEndedFile(cfg.NodeID), nodeEnded(addr.Run, why), true); err != nil {
				log.WithError(err).Warn("could not tell node 0 how this node's tasks ended: the step will not be marked finished")
			}
			if err := removeRunDir(layout.RunDir); err != nil {
				return err
			}
			log.Info("agent stopped cleanly")
			return nil
		case s := <-sigs:
			if s != syscall.SIGTERM {
				log.WithField("signal", s.String()).Info("signal ignored")
				continue
			}
			// Node 0's agent checkpoints every rank and ends them (dmtcp_command -kc); the
			// task launchers here then end as stopped (143), not as finished.
			log.Info("SIGTERM: node 0 checkpoints the step; this node's tasks end as stopped")
			stopping = true
			markRunDir(layout.RunDir, proto.StoppingFile, log)
			markRunDir(layout.RunDir, proto.StoppedFile, log)
		}
	}
}

// leaderAddr is what the leader writes into coordinator.addr.
func leaderAddr(cfg Config, started time.Time) CoordAddr {
	return CoordAddr{JobID: cfg.JobID, Step: cfg.Step, RestartCount: cfg.RestartCount,
		Run: fmt.Sprintf("%d-%d", os.Getpid(), started.UnixNano())}
}

// scriptImage is one image a coordinator's restart script names, with the host DMTCP
// recorded for it ("" when the script is for one host).
type scriptImage struct {
	Path string
	Host string
}

// restartScriptImages reads the images of a DMTCP restart script: given_ckpt_files="..." for
// one host, or the worker_ckpts lines " :: <host> :<mode>: <image> ... : <shell>" for several.
func restartScriptImages(script string) []scriptImage {
	var out []scriptImage
	inWorkers := false
	for _, line := range strings.Split(script, "\n") {
		t := strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(t, "given_ckpt_files=\""); ok {
			for _, f := range strings.Fields(strings.TrimSuffix(v, "\"")) {
				out = append(out, scriptImage{Path: f})
			}
			continue
		}
		if strings.HasPrefix(t, "worker_ckpts='") {
			inWorkers = true
			t = strings.TrimPrefix(t, "worker_ckpts='")
		}
		if !inWorkers {
			continue
		}
		if strings.HasPrefix(t, "'") {
			inWorkers = false
			continue
		}
		f := strings.Fields(t)
		if len(f) < 3 || f[0] != "::" {
			continue
		}
		for _, img := range f[3:] {
			if img == ":" {
				break
			}
			out = append(out, scriptImage{Path: img, Host: f[1]})
		}
	}
	return out
}

// rankImages lists, for a step across nodes, the images of each rank-<R>/ folder of ckptDir
// with the node DMTCP recorded for them in the restart script (fallback: "unknown").
func rankImages(ckptDir string) ([]manifest.Rank, error) {
	hosts := map[string]string{}
	if s, _ := coordinator.NewestRestartScript(ckptDir); s != "" {
		if b, err := os.ReadFile(s); err == nil {
			for _, im := range restartScriptImages(string(b)) {
				hosts[filepath.Base(im.Path)] = im.Host
			}
		}
	}
	dirs, err := filepath.Glob(filepath.Join(ckptDir, "rank-*"))
	if err != nil {
		return nil, err
	}
	var ranks []manifest.Rank
	for _, d := range dirs {
		r, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "rank-"))
		if err != nil || manifest.RankDir(r) != filepath.Base(d) {
			continue
		}
		imgs, _ := filepath.Glob(filepath.Join(d, "ckpt_*.dmtcp"))
		if len(imgs) == 0 {
			continue
		}
		sort.Strings(imgs)
		rk := manifest.Rank{Rank: r, Node: "unknown"}
		nodes := map[string]bool{}
		for _, im := range imgs {
			rk.Images = append(rk.Images, manifest.RankDir(r)+"/"+filepath.Base(im))
			if h := hosts[filepath.Base(im)]; h != "" {
				nodes[h] = true
			}
		}
		if len(nodes) > 0 {
			names := make([]string, 0, len(nodes))
			for h := range nodes {
				names = append(names, h)
			}
			sort.Strings(names)
			rk.Node = strings.Join(names, ",")
		}
		ranks = append(ranks, rk)
	}
	sort.Slice(ranks, func(i, j int) bool { return ranks[i].Rank < ranks[j].Rank })
	return ranks, nil
}

// everyRank checks that a checkpoint of a step across nodes holds images of each of its
// tasks (ranks sorted, as rankImages returns them): when a node is lost, the coordinator
// checkpoints what is left, and such a generation would restore a step with ranks missing.
// tasks 0 (not known) checks nothing.
func everyRank(ranks []manifest.Rank, tasks int) error {
	if tasks <= 0 {
		return nil
	}
	have := map[int]bool{}
	for _, r := range ranks {
		have[r.Rank] = true
	}
	var missing []string
	for r := 0; r < tasks; r++ {
		if !have[r] {
			missing = append(missing, strconv.Itoa(r))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the checkpoint has no image of rank %s of the step's %d tasks (a node lost, or its tasks gone?)",
			strings.Join(missing, ", "), tasks)
	}
	return nil
}
