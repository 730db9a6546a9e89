package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/generations"
	"github.com/slurm-dmtcp/slurm-dmtcp/coordinator"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto/manifest"
)

// Main is the whole agent process: parse args, refuse root, set up folders, find DMTCP,
// start the coordinator, serve. Every failure before ready goes to the plugin as an error
// message naming what is wrong. It returns the process exit code.
func Main(args []string, lifeline io.Reader, ready io.Writer, stderr io.Writer) int {
	cfg, err := ParseArgs(args, stderr)
	if err != nil {
		_ = proto.WriteError(ready, err.Error())
		fmt.Fprintln(stderr, "slurm-dmtcp-agent:", err)
		return ExitUsage
	}
	err = run(cfg, lifeline, ready)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(stderr, "slurm-dmtcp-agent:", err)
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ExitFailure
}

func run(cfg Config, lifeline io.Reader, ready io.Writer) error {
	started := time.Now()
	var runDir string        // removed on every failure once it exists
	var leaderStepDir string // node 0 of a step across nodes: where the other nodes wait for its word
	readyErr := func(err error) error {
		if runDir != "" {
			_ = removeRunDir(runDir)
		}
		if leaderStepDir != "" {
			a := leaderAddr(cfg, started)
			a.Error = err.Error()
			_ = WriteCoordAddr(leaderStepDir, a)
		}
		_ = proto.WriteError(ready, err.Error())
		return err
	}
	if os.Geteuid() == 0 || os.Getuid() == 0 {
		return readyErr(fail(ExitFailure, "slurm-dmtcp-agent never runs as root"))
	}
	// SIGTERM is ignored until Serve (or runMember) handles it: before the ready message
	// there is nothing to checkpoint, and the coordinator started meanwhile keeps it ignored
	// (Slurm sends it to every process of the step; the coordinator must outlive it).
	signal.Ignore(syscall.SIGTERM)
	u, err := user.Current()
	if err != nil {
		return readyErr(fail(ExitFailure, "who am I: %v", err))
	}
	layout, err := NewLayout(cfg, u)
	if err != nil {
		return readyErr(&Error{Code: ExitFolders, Err: err})
	}
	runDir = layout.RunDir
	logName := "agent.log"
	if cfg.Member() {
		logName = fmt.Sprintf("agent.node-%d.log", cfg.NodeID)
	} else if cfg.AcrossNodes() {
		// A coordinator.addr of an earlier run must not be taken for this run's.
		_ = os.Remove(filepath.Join(layout.StepDir, proto.CoordAddrFile))
		leaderStepDir = layout.StepDir
	}
	logFile, err := os.OpenFile(filepath.Join(layout.StepDir, logName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return readyErr(fail(ExitFolders, "agent log: %v", err))
	}
	defer logFile.Close()
	// The plugin gives the agent /dev/null as its error output: a Go runtime crash report
	// (panic, fatal error) goes to the agent log instead, where it can be found.
	_ = syscall.Dup3(int(logFile.Fd()), 2, 0)
	// Node 0 of a step (every node, but the others of a step across nodes) opens its
	// generations and starts the coordinator at once: the coordinator needs only the step's
	// folders, and starts while Slurm is asked for the restart count, the node's facts are
	// read (a cache read, or a collection of a few ms) and the restore is planned. The other
	// nodes of a step across nodes need neither the facts nor a coordinator: node 0 decides.
	sigs := make(chan os.Signal, 4)
	defer signal.Stop(sigs)
	var store *generations.Store
	var inst coordinator.Install
	var coordinatorStarted func() coordStart // waits for startCoordinator, however often called
	factsc := make(chan NodeFacts, 1)
	if !cfg.Member() {
		if inst, err = coordinator.Find(cfg.DMTCPPrefix, os.Getenv("PATH")); err != nil {
			fmt.Fprintf(logFile, "DMTCP not found: %v\n", err)
			return readyErr(&Error{Code: ExitNoDMTCP, Err: err})
		}
		if store, err = openStore(layout, cfg.Keep); err != nil {
			return readyErr(&Error{Code: ExitFolders, Err: err})
		}
		coordc := make(chan coordStart, 1)
		go func() {
			cs := startCoordinator(cfg, layout, inst)
			// The coordinator runs with SIGTERM ignored; from now on Slurm's SIGTERM is
			// caught and kept for Serve, which checkpoints on it (one that came during a
			// restore or before the ready message is not lost).
			signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
			coordc <- cs
		}()
		coordinatorStarted = sync.OnceValue(func() coordStart { return <-coordc })
		go func(c Config) { factsc <- loadFacts(c) }(cfg)
	}
	job := SlurmJob{ID: cfg.JobID}
	// slurmstepd does not give the batch step its restart count (SLURM_RESTART_COUNT comes
	// only into the tasks' environment): Slurm is asked, when an earlier run of the step left
	// its folder. A job's first run has none, and is spared the scontrol (10-20 ms).
	var restartUnknown error
	if cfg.RestartCount == 0 && cfg.Step == "batch" && layout.Earlier {
		cfg.RestartCount, restartUnknown = batchRestartCount(context.Background(), job, restartAskPause)
	}
	log := NewLogger(logFile, logrus.Fields{"job_id": cfg.JobID, "step": cfg.Step, "user": u.Username,
		"restart_count": cfg.RestartCount})
	log.WithFields(logrus.Fields{"pid": os.Getpid(), "node_id": cfg.NodeID, "nodes": cfg.Nodes}).Info("agent starting")
	if restartUnknown != nil {
		log.WithError(restartUnknown).Error("restart count unknown")
	}
	for _, w := range layout.Warnings {
		log.Warn(w)
	}
	if cfg.Member() {
		return runMember(cfg, layout, log, ready, lifeline)
	}
	// failed ends a start that went wrong, the coordinator stopped if it was started.
	failed := func(err error) error {
		store.Close()
		if c := coordinatorStarted().coord; c != nil {
			qctx, qcancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = c.Quit(qctx)
			qcancel()
		}
		return readyErr(err)
	}

	host, _ := os.Hostname()
	// Only the agent of the batch step, or of a step outside a batch job, on its first node,
	// shows its checkpoints in the job's Comment and records them in the step's history.
	vis := newVisible(cfg, layout.StepDir, host, slurmComment(cfg.JobID, log), log)
	for _, st := range store.StaleRemoved() {
		log.WithField("folder", st).Warn("removed a half-written generation left by an earlier run")
	}
	extra, err := restorePlan(cfg, store, layout.StepDir, log, !cfg.AcrossNodes())
	if err != nil {
		return failed(&Error{Code: ExitNoCheckpoint, Err: err})
	}
	if restartUnknown != nil {
		extra = addNote(extra, restartUnknown.Error())
	}
	compress := "off"
	if cfg.Compress {
		compress = "on"
	}
	extra = append(extra, proto.KV{Key: proto.KeyCompress, Value: compress})
	// The node's facts decide where a restore may run; a run that starts from the top needs
	// them only for its manifests, and does not wait for them before the ready message.
	var node NodeFacts
	var nodeFacts json.RawMessage
	place := func() error {
		node = <-factsc
		extra, nodeFacts, err = placeRestore(cfg, node, extra, vis, log)
		return err
	}
	restore := restoring(extra) != ""
	if restore {
		if err := place(); err != nil {
			return failed(err)
		}
	}
	if restoring(extra) != "" && !cfg.AcrossNodes() {
		// A failed restore is retried (restoreretry.go): the launchers wait for the word.
		extra = append(extra, proto.KV{Key: proto.KeyRestoreRetry, Value: "1"})
	}
	if cfg.PerRank() {
		extra = append(extra, proto.KV{Key: proto.KeyPerRank, Value: "1"})
	}
	cs := coordinatorStarted()
	if cs.err != nil {
		log.WithError(cs.err.Err).Error("coordinator")
		return failed(cs.err)
	}
	if len(cs.allow) > 0 {
		log.WithField("addresses", strings.Join(cs.allow, ",")).Info("coordinator guard: other hosts let in are the step's nodes")
	}
	coord := cs.coord
	coord.SetWarn(log.Warnf)
	if cfg.AcrossNodes() {
		a := leaderAddr(cfg, started)
		a.Host, a.Port, a.Extra = coord.Host, coord.Port, extra
		if err := WriteCoordAddr(layout.StepDir, a); err != nil {
			return failed(fail(ExitFolders, "tell the other nodes where the coordinator is: %v", err))
		}
		log.WithFields(logrus.Fields{"coord_host": coord.Host, "coord_port": coord.Port, "run": a.Run}).Info("coordinator published for the other nodes of the step")
	}
	jobID, _ := strconv.ParseUint(cfg.JobID, 10, 32)
	a := &Agent{Config: cfg, Layout: layout, Coord: coord, Store: store, Log: log, Extra: extra, Signals: sigs,
		CheckpointTimeout: 30 * time.Minute, Job: job, Started: started, AskEndTimeAfter: askEndTimeAfter,
		Space: StepSpace("/proc", os.Getppid(), os.Getpid(), layout.CkptDir, newestSize(store.List)),
		Meta: manifest.Meta{JobID: uint32(jobID), StepID: cfg.Step, RestartCount: uint32(cfg.RestartCount),
			User: u.Username, Node: host},
		Progress: func() io.WriteCloser { return taskStderr(layout.RunDir) },
		PerRank:  cfg.PerRank(),
		Visible:  vis,
		AfterReady: func(m *manifest.Meta) {
			if !restore {
				_ = place() // no restore to check: it only reads the facts
			}
			version, err := dmtcpVersion(node, cs.inst)
			if err != nil || version == "" {
				log.WithError(err).Warn("DMTCP version unknown")
				version = "unknown" // manifests need one; the probe compares it on restore
			}
			m.DMTCPVersion, m.NodeFacts = version, nodeFacts
		},
	}
	return a.Serve(context.Background(), coord.Host, coord.Port, ready, lifeline)
}

// askEndTimeAfter: Slurm is asked for the job's end time (scontrol, for the checkpoint before
// the time limit) once the step has run this long, not while its tasks start.
const askEndTimeAfter = time.Second

// coordStart is what startCoordinator did.
type coordStart struct {
	inst  coordinator.Install
	coord *coordinator.Coordinator // nil when it could not start
	err   *Error                   // ExitCoordinator, ExitGuard
	allow []string                 // the addresses of the step's nodes the guard lets in
}

// startCoordinator starts the step's coordinator; it does not wait for it to run (Serve does,
// after the ready message: the tasks may connect before it answers).
func startCoordinator(cfg Config, layout Layout, inst coordinator.Install) coordStart {
	guard, err := coordGuard()
	if err != nil {
		return coordStart{inst: inst, err: &Error{Code: ExitGuard, Err: err}}
	}
	coordHost := ""
	var allow []string
	if cfg.AcrossNodes() {
		coordHost = coordinator.NodeAddress() // the other nodes' tasks must reach it
		// ... and only they, from the other hosts.
		if allow, err = stepNodeAddresses(context.Background(), slurm.Scontrol("scontrol", slurm.DefaultTimeout),
			net.LookupHost, cfg.JobID, cfg.Step); err != nil {
			return coordStart{inst: inst, err: &Error{Code: ExitGuard, Err: fmt.Errorf("coordinator guard: %w", err)}}
		}
	}
	coord, err := coordinator.Launch(coordinator.Options{Install: inst, RunDir: layout.RunDir,
		CkptDir: layout.CkptDir, TmpDir: layout.TmpDir, Guard: guard, Host: coordHost,
		LocalOnly: !cfg.AcrossNodes(), Allow: allow})
	cs := coordStart{inst: inst, coord: coord, allow: allow}
	if err != nil {
		cs.err = &Error{Code: coordinatorExit(err), Err: err}
	}
	return cs
}

// dmtcpVersion is the version of the DMTCP the step runs: the node's facts name it when
// they were taken of the same dmtcp_launch (the probe's cache, or collected now), else
// dmtcp_launch --version says (a process start, about 5 ms).
func dmtcpVersion(node NodeFacts, inst coordinator.Install) (string, error) {
	if node.Err == nil && node.Facts.DMTCPVersion != "" && node.Facts.DMTCPLaunch == inst.Launch {
		return node.Facts.DMTCPVersion, nil
	}
	return inst.Version()
}

// coordGuard is the library that keeps other users away from the coordinator, installed
// beside the agent; an error naming it when it is missing: the step is not run without it.
func coordGuard() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("the coordinator guard: where is the agent: %w", err)
	}
	return guardBeside(filepath.Dir(exe))
}

// guardName is the coordinator guard's file name; it is installed beside the agent.
const guardName = "slurm-dmtcp-coordguard.so"

// guardBeside is coordGuard for the agent's folder dir.
func guardBeside(dir string) (string, error) {
	p := filepath.Join(dir, guardName)
	st, err := os.Stat(p)
	if err == nil && !st.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err != nil {
		return "", &coordinator.GuardError{Guard: p, Why: fmt.Sprintf("not installed beside the agent (%v); install it there (make install)", err)}
	}
	return p, nil
}

// taskStderr opens the error output of the step's first task, which the task launcher
// recorded (by pid, and by path for a regular file) in the runtime folder; nil when there is
// none (yet).
func taskStderr(runDir string) io.WriteCloser {
	b, err := os.ReadFile(filepath.Join(runDir, proto.TaskPidFile))
	if err != nil {
		return nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return nil
	}
	if f, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/2", pid), os.O_WRONLY|os.O_APPEND, 0); err == nil {
		return f
	}
	p, err := os.ReadFile(filepath.Join(runDir, proto.TaskStderrFile))
	if err != nil {
		return nil
	}
	f, err := os.OpenFile(strings.TrimSpace(string(p)), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil
	}
	return f
}
