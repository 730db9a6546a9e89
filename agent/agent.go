package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/atomicfile"
	ctlsrv "github.com/slurm-dmtcp/slurm-dmtcp/agent/control"
	"github.com/slurm-dmtcp/slurm-dmtcp/agent/generations"
	"github.com/slurm-dmtcp/slurm-dmtcp/agent/safepath"
	"github.com/slurm-dmtcp/slurm-dmtcp/coordinator"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto/manifest"
)

// Exit codes of slurm-dmtcp-agent (also in docs/user.md, "Exit codes").
const (
	ExitOK          = 0
	ExitFailure     = 1 // anything else, see the message
	ExitUsage       = 2 // bad command line: plugin and agent disagree
	ExitNoDMTCP     = 3 // DMTCP not found or not runnable
	ExitCoordinator = 4 // the coordinator would not start or died
	ExitFolders     = 5 // a checkpoint or runtime folder could not be made safe
	// ExitNoCheckpoint: the job restarted without a verified generation and policy says fail
	// (plugstack.conf on_no_checkpoint=fail).
	ExitNoCheckpoint = 6
	// ExitGuard (8): the coordinator guard (slurm-dmtcp-coordguard.so) is missing beside the
	// agent, or not active in the coordinator; the step does not run unguarded. (7 is
	// ExitIncompatible, placement.go.)
	ExitGuard = 8
)

// Error carries an exit code with the message the plugin shows the user.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func fail(code int, format string, a ...any) error {
	return &Error{Code: code, Err: fmt.Errorf(format, a...)}
}

// Coordinator is what the agent needs of a running dmtcp_coordinator.
type Coordinator interface {
	Status(ctx context.Context) (coordinator.Status, error)
	Checkpoint(ctx context.Context) error
	CheckpointAndKill(ctx context.Context) error
	// Settle waits, at most max, until no process of the computation on this node is
	// starting (coordinator.Starting); it says why not when the wait ends without that.
	Settle(ctx context.Context, max time.Duration) string
	Kill(ctx context.Context) error
	Quit(ctx context.Context) error
	Done() <-chan struct{}
	// WaitUp returns once the coordinator runs, or why it does not.
	WaitUp(ctx context.Context) error
}

// Layout is where a step's files go.
type Layout struct {
	JobDir  string // expanded checkpoint_dir: survives the job, holds every step
	StepDir string // JobDir/<step>: agent.log, checkpoints of this step
	CkptDir string // StepDir/.current: where DMTCP writes images before they become a generation
	RunDir  string // runtime_dir/slurm-dmtcp-<uid>[.<suffix>]/<job>.<step>: removed at the end
	TmpDir  string // RunDir/tmp: DMTCP's temporary files
	// Earlier: StepDir was there before this run (an earlier run of the step made it).
	Earlier bool
	// Warnings: names under runtime_dir that another user planted and that were passed over.
	Warnings []string
}

// NewLayout computes and creates the step's folders as the current (job's) user.
func NewLayout(c Config, u *user.User) (Layout, error) {
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return Layout{}, fmt.Errorf("uid %q: %w", u.Uid, err)
	}
	jobDir, err := proto.ExpandCheckpointDir(c.CkptTemplate, u, c.JobID)
	if err != nil {
		return Layout{}, err
	}
	l := Layout{JobDir: jobDir, StepDir: filepath.Join(jobDir, c.StepName())}
	l.CkptDir = filepath.Join(l.StepDir, generations.CurrentDirName)
	if _, err := os.Lstat(l.StepDir); err == nil {
		l.Earlier = true
	}
	// Every component from / is checked (owned by root or the user, sticky where others may
	// write), so that no other user can swap a folder of the path after the checks.
	for _, d := range []string{l.JobDir, l.StepDir, l.CkptDir} {
		if err := safepath.PrivateDir("checkpoint_dir", d, uid); err != nil {
			return Layout{}, err
		}
	}
	// The user's folder under runtime_dir: a name another user planted first is passed over.
	base, err := safepath.UserRunDir(c.RuntimeDir, uid, func(m string) { l.Warnings = append(l.Warnings, m) })
	if err != nil {
		return Layout{}, err
	}
	l.RunDir = filepath.Join(base, c.RunDirName())
	l.TmpDir = filepath.Join(l.RunDir, "tmp")
	if err := safepath.PrivateDir("runtime_dir", l.RunDir, uid); err != nil {
		return Layout{}, err
	}
	// An earlier run of this step killed before its cleanup left its runtime files (the
	// task's pid, markers for the launcher, DMTCP's temporary files): none of them is valid now.
	if err := clearDir(l.RunDir); err != nil {
		return Layout{}, fmt.Errorf("runtime folder %s: remove what an earlier run left: %w", l.RunDir, err)
	}
	if err := safepath.PrivateDir("runtime_dir", l.TmpDir, uid); err != nil {
		return Layout{}, err
	}
	return l, nil
}

// openStore opens the step's generations, which takes the step's lock, and only then clears
// the images an earlier run was writing when it was killed (not a generation): an agent of an
// earlier run that still lives holds the lock, and its DMTCP may still write there. Of a step
// across nodes only node 0 opens it (before it publishes its coordinator, so before any task
// of this run writes there).
func openStore(l Layout, keep int) (*generations.Store, error) {
	store, err := generations.Open(l.StepDir, generations.Options{Keep: keep})
	if err != nil {
		return nil, err
	}
	if err := clearDir(l.CkptDir); err != nil {
		store.Close()
		return nil, fmt.Errorf("checkpoint folder %s: remove what an earlier run left: %w", l.CkptDir, err)
	}
	return store, nil
}

// Agent runs one step's coordinator and checkpoints.
type Agent struct {
	Config Config
	Layout Layout
	Coord  Coordinator
	Store  *generations.Store
	Log    *logrus.Entry
	// Meta is copied into every generation's manifest (times and reason are filled in).
	Meta manifest.Meta
	// Progress returns where one line per checkpoint goes for the user to see (the job's
	// error output), or nil.
	Progress func() io.WriteCloser
	// Extra pairs for the ready message (what to restore, notes for the user).
	Extra []proto.KV
	// AfterReady, when set, completes Meta right after the ready message (what the tasks
	// do not wait for: the node's facts, DMTCP's version); Serve calls it once.
	AfterReady func(*manifest.Meta)
	// CheckpointTimeout bounds one checkpoint request.
	CheckpointTimeout time.Duration
	// RestoreWait bounds a restore (restorewatch.go); 0: from the images' size.
	RestoreWait time.Duration
	// RestoreSettle: a restored program that dies abnormally this long after the restore
	// completed counts as a failed restore; 0: restoreSettle.
	RestoreSettle time.Duration
	// Job reads the job's end time and requeues it (continuation past the time limit); nil:
	// no checkpoint before the time limit.
	Job Job
	// AskEndTimeAfter is how long the step runs before Slurm is asked for the job's end time
	// (a process start): not while the step's own tasks start, and never for a step shorter
	// than that, which needs no checkpoint before its limit.
	AskEndTimeAfter time.Duration
	// Started is when this run of the step began.
	Started time.Time
	// Space, when set, is checked before each checkpoint.
	Space SpaceCheck
	// restored is the number of the generation the step restores (the ready message's, then
	// the one verified or retried); 0 when it restores none.
	restored atomic.Int64
	// settling is true while a restore is watched after it completed (restorewatch.go): no
	// periodic checkpoint then.
	settling atomic.Bool
	// progressMu guards undelivered: lines for the job's error output not written yet.
	progressMu  sync.Mutex
	undelivered []string
	// forks keeps the computation's forks and the start of a checkpoint apart (forklock.go);
	// nil when it could not be made.
	forks *forkLock
	// Life is the step's phase (lifecycle.go): Serve, the restore's watch, the checkpoints
	// and the step's end move it.
	Life Lifecycle
	// Signals, when set, already receives SIGTERM, SIGINT and SIGHUP (from the coordinator's
	// start on); else Serve asks for them.
	Signals chan os.Signal
	// PerRank: node 0 of a step of several tasks (Config.PerRank); images are in rank-<R>/ folders, listed by
	// rank in the manifest.
	PerRank bool
	// Visible records each generation, restore and requeue in the step's history file and
	// shows the newest in the job's Comment; nil: neither.
	Visible *visible

	control      *control                // the control socket (control.go); nil without one
	controlGuard func(ctlsrv.Cred) error // who may use it; nil: the job's user from inside the job
}

// Serve tells the plugin where the coordinator is (on ready: the coordinator may not run
// yet, what connects to it waits in its socket's queue), then takes periodic checkpoints
// until the lifeline reaches EOF (the plugin closed it: the step's tasks are done, or
// slurmstepd is gone). On SIGTERM (requeue, preemption, time limit, scancel) it
// takes a checkpoint, commits it as a generation, then ends the computation so that nothing
// runs past the saved state. At the end it stops the coordinator and removes RunDir.
func (a *Agent) Serve(ctx context.Context, host string, port int, ready io.Writer, lifeline io.Reader) error {
	kvs := readyKVs(host, port, a.Layout)
	periodic := newPeriodic(a.Config.Interval)
	defer periodic.Stop()
	kvs = append(kvs, a.startControl(periodic, host, port)...)
	defer a.stopControl()
	// SIGTERM handled from before the tasks start (the ready message lets them start).
	sigs := a.Signals
	if sigs == nil {
		sigs = make(chan os.Signal, 4)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
		defer signal.Stop(sigs)
	}
	// Before the ready message: the tasks' forks look for it from their start.
	if fl, err := openForkLock(a.Layout.RunDir); err != nil {
		a.Log.WithError(err).Warn("forks are not kept apart from checkpoints")
	} else {
		a.forks = fl
		defer fl.close()
	}
	if err := proto.WriteReady(ready, append(kvs, a.Extra...)); err != nil {
		return fmt.Errorf("tell the plugin we are ready: %w", err)
	}
	if a.AfterReady != nil {
		a.AfterReady(&a.Meta)
	}
	upCtx, cancelUp := context.WithTimeout(ctx, coordUpWait)
	defer cancelUp()
	up := make(chan error, 1)
	go func() { up <- a.Coord.WaitUp(upCtx) }()

	stop := make(chan struct{})
	// Periodic checkpoints and the one before the time limit give up when the step's tasks
	// are gone; a checkpoint on SIGTERM does not (its tasks exit as their images are written).
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	go func() {
		_, _ = io.Copy(io.Discard, lifeline)
		close(stop)
		cancelRun()
	}()

	if gen := restoring(a.Extra); gen != "" && !a.Config.Member() {
		a.setRestored(gen)
		if !verifyLater(a.Extra) {
			a.Visible.restore(gen, 1)
		}
		a.Life.From(Restoring, Starting)
		go func() {
			// A step that starts from the top after all, or whose restore is over (watched
			// to its end, or no image to watch), runs; one that gave up stays killed.
			defer a.Life.From(Running, Restoring)
			if verifyLater(a.Extra) {
				if gen = a.verifyRestore(gen); gen == "" {
					return
				}
			}
			a.watchRestore(runCtx, gen, a.RestoreWait)
		}()
	}
	var lead <-chan time.Time
	var leadTimer *time.Timer
	defer func() {
		if leadTimer != nil {
			leadTimer.Stop()
		}
	}()
	a.Life.From(Running, Starting)
	leadArmed := a.armLeadLater(runCtx)
	requeued := false
	preemptSeen := false // the first SIGTERM of a preemption was answered
	for {
		select {
		case <-stop:
			err := a.endStep(ctx, sigs)
			// The plugin waits for the ready pipe's EOF before Slurm hears that the step's
			// tasks ended: once the coordinator is gone, the marker written and the runtime
			// folder removed, it is closed, not left to this process's exit.
			release(ready)
			return err
		case <-ctx.Done():
			return a.shutdown(nil)
		case err := <-up:
			up = nil
			if err != nil {
				return a.coordinatorFailed(err)
			}
			a.Log.WithFields(logrus.Fields{"coord_host": host, "coord_port": port, "interval": a.Config.Interval.String(),
				"checkpoint_dir": a.Layout.CkptDir, "duration": time.Since(a.Started).Round(time.Millisecond).String()}).Info("coordinator ready")
		case <-a.Coord.Done():
			if up != nil { // it never ran: WaitUp says why
				return a.coordinatorFailed(<-up)
			}
			a.Store.Close()
			_ = a.cleanup()
			return fail(ExitCoordinator, "dmtcp_coordinator exited while the step was running; see %s", filepath.Join(a.Layout.RunDir, "coordinator.log"))
		case s := <-sigs:
			if s == syscall.SIGTERM && !preemptSeen && a.preempted(ctx) {
				// Slurm preempts the job: only its steps got SIGTERM, its batch script goes
				// on until GraceTime ends. Ending the step now would let the script go on
				// without it, and a job that ends in its grace time is not requeued.
				preemptSeen = true
				a.Log.Info("SIGTERM: Slurm is preempting the job; checkpointing, the step runs on until its grace time ends")
				if _, err := a.Checkpoint(runCtx, manifest.ReasonSignal); err == nil {
					a.progress("preempted: checkpoint taken; the step runs on until Slurm stops the job at the end of its grace time")
				}
				periodic.Restart()
				continue
			}
			if s != syscall.SIGTERM || a.Life.To(Stopping) != nil {
				a.Log.WithField("signal", s.String()).WithField("phase", a.Life.Phase().String()).Info("signal ignored")
				continue
			}
			// Also after the agent's own requeue past the time limit: the computation ran on
			// after the checkpoint before the limit, and ending it there would run that
			// stretch again after the restore (its output twice). That checkpoint stays as
			// the one to restore should this one fail.
			a.Log.WithField("after_our_requeue", requeued).Info("SIGTERM: Slurm is stopping the step; checkpointing before it goes")
			_, _ = a.checkpoint(ctx, manifest.ReasonSignal, true)
		case t := <-leadArmed:
			leadArmed = nil
			if t != nil {
				leadTimer, lead = t, t.C
			}
		case <-lead:
			if a.Life.Stopped() {
				continue
			}
			again, rq := a.beforeTimeLimit(runCtx)
			requeued = rq
			if again > 0 {
				leadTimer.Reset(again)
			}
		case <-periodic.C():
			if requeued {
				continue
			}
			if a.Life.Phase() != Running || a.settling.Load() {
				// Restoring, or Slurm stopping the step: the timer is one-shot, so it is
				// armed again, or the run would have no periodic checkpoint after this.
				periodic.Restart()
				continue
			}
			_, _ = a.Checkpoint(runCtx, manifest.ReasonPeriodic)
			periodic.Restart() // measured from the end of the previous checkpoint
		case <-a.controlKick(): // dmtcpctl: a checkpoint request or a new interval (control.go)
			a.serveControl(runCtx, requeued || a.Life.Stopped())
		}
	}
}

// preempted tells whether Slurm is preempting the job of this step, where that changes what
// a SIGTERM means: a step of the job (not its batch script, which Slurm signals only when
// the grace time ends) on one node. Not knowing (no scontrol) counts as not preempted: the
// step is checkpointed and stopped, as on any other SIGTERM.
func (a *Agent) preempted(ctx context.Context) bool {
	if a.Job == nil || a.Config.Step == "batch" || a.Config.AcrossNodes() {
		return false
	}
	qctx, cancel := context.WithTimeout(ctx, preemptQueryWait)
	defer cancel()
	info, err := a.Job.Info(qctx)
	if err != nil {
		a.Log.WithError(err).Warn("SIGTERM: cannot tell whether the job is being preempted; stopping the step")
		return false
	}
	return !info.PreemptTime.IsZero()
}

// preemptQueryWait bounds the question to slurmctld on a SIGTERM, out of the step's
// KillWait window.
const preemptQueryWait = 3 * time.Second

// endStep stops the coordinator once the step's tasks are gone. The step is marked
// finished, so that a later run of the job starts it from the top, only on proof: Slurm was
// not stopping it, it was running (or restoring: Lifecycle), and every task of every node
// reported that its program ended by itself.
// Anything short of that (a task killed, a launcher killed with it, a node that said
// nothing) leaves the newest generation to restore.
func (a *Agent) endStep(ctx context.Context, sigs <-chan os.Signal) error {
	if a.Life.Stopped() {
		if exits := a.endedAtStop(); exits != nil {
			a.Log.WithField("exits", fmt.Sprint(exits)).Info("step finished by itself as Slurm stopped it: " +
				"the next run of the job does not run it again; stopping the coordinator")
			return a.shutdown(func() { a.markFinishedAtStop(exits) })
		}
		a.Log.Info("step stopped by Slurm: stopping the coordinator")
		return a.shutdown(nil)
	}
	gaveUp := a.Life.Phase() == Killed // a restore that failed every attempt
	why := tasksEnded(a.Layout.RunDir, a.Config.Tasks)
	if a.Config.AcrossNodes() {
		a.waitOtherNodes(ctx, otherNodesWait)
		if why == "" {
			why = othersEnded(ctx, a.Layout.StepDir, leaderAddr(a.Config, a.Started).Run, a.Config.Nodes, nodeEndedWait)
		}
	}
	if why == "" && !a.Life.May(Finished) {
		why = fmt.Sprintf("its tasks ended while it was %s", a.Life.Phase())
	}
	if why != "" {
		_ = a.Life.To(Killed)
		a.Log.WithField("reason", why).Warn("the step did not finish by itself: it is not marked finished, " +
			"a later run of the job restores its newest generation; stopping the coordinator")
		if !gaveUp {
			a.requeueToRestore(ctx, why)
		}
		return a.shutdown(nil)
	}
	a.Log.Info("step finished: stopping the coordinator")
	return a.shutdown(func() { a.finish(ctx, sigs) })
}

// stopRaceWait bounds the wait, once a step's tasks ended by themselves, for the SIGTERM of
// a stop of Slurm's that came as they ended: slurmstepd signals the step's processes one by
// one, and a program outside DMTCP's reach (dmtcp_nocheckpoint) may end on its SIGTERM
// before this process has seen its own. The wait ends when the coordinator has exited.
const stopRaceWait = 500 * time.Millisecond

// finish records that the step ended by itself (Finished: a later run of the job starts it
// from the top), or, when Slurm's SIGTERM came meanwhile (as its tasks ended, or while the
// coordinator exits), that it ended as Slurm stopped it (EndedAtStop: the next run does not
// run it again). Not for a step across nodes, nor for a step of a preempted job: Slurm runs
// such a job's batch script again, and a step that finished starts from the top.
func (a *Agent) finish(ctx context.Context, sigs <-chan os.Signal) {
	if !a.Config.AcrossNodes() && stopCame(sigs, a.Coord.Done(), stopRaceWait) && !a.preempted(ctx) &&
		a.Life.To(Stopping) == nil && a.Life.To(EndedAtStop) == nil {
		if exits := a.endedAtStop(); exits != nil {
			a.Log.WithField("exits", fmt.Sprint(exits)).Info("SIGTERM as the step finished by itself: Slurm stopped it; " +
				"the next run of the job does not run it again")
			a.markFinishedAtStop(exits)
		}
		return
	}
	if a.Life.To(Finished) == nil {
		a.markFinished()
	}
}

// stopCame reports whether a SIGTERM is, or comes, in sigs before gone is closed or max has
// passed. Other signals are dropped.
func stopCame(sigs <-chan os.Signal, gone <-chan struct{}, max time.Duration) bool {
	t := time.NewTimer(max)
	defer t.Stop()
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGTERM {
				return true
			}
		case <-gone:
			for {
				select {
				case s := <-sigs:
					if s == syscall.SIGTERM {
						return true
					}
				default:
					return false
				}
			}
		case <-t.C:
			return false
		}
	}
}

// endedAtStop returns the exit statuses of this node's tasks, by local id, when the step
// ended by itself as Slurm stopped it: the stop checkpoint found no process left, or was
// skipped and left the programs running, and every task launcher recorded that its program
// ended by itself. nil otherwise, and always for a
// step across nodes (the other nodes' launchers do not see that checkpoint's outcome).
func (a *Agent) endedAtStop() []int {
	if !a.Life.OwnEndsCount() || a.Config.AcrossNodes() {
		return nil
	}
	exits := taskExits(a.Layout.RunDir, a.Config.Tasks)
	if exits == nil || a.Life.To(Finished) != nil {
		_ = a.Life.To(Killed)
		return nil
	}
	return exits
}

// nodeEndedWait bounds how long node 0 waits, once the step's processes are gone, for the
// other nodes' word on how their tasks ended (their agents write it as their lifeline
// closes, a few ms after their tasks end).
const nodeEndedWait = 3 * time.Second

// release closes the ready pipe, when it can be closed: the plugin then knows that the
// agent is done.
func release(ready io.Writer) {
	if c, ok := ready.(io.Closer); ok {
		_ = c.Close()
	}
}

// coordUpWait bounds the wait for the coordinator to run once it is started (a few ms).
const coordUpWait = 20 * time.Second

// coordinatorFailed ends a step whose coordinator never ran: the reason goes to the agent log
// and to proto.CoordFailedFile in the runtime folder, where the task launchers, whose
// dmtcp_launch could not reach it, find it for the job's error output. The runtime folder
// stays for them; the plugin removes it at the step's end.
func (a *Agent) coordinatorFailed(err error) error {
	a.Log.WithError(err).Error("coordinator")
	if werr := atomicfile.Write(a.Layout.RunDir, proto.CoordFailedFile, []byte(err.Error()+"\n"), false); werr != nil {
		a.Log.WithError(werr).Warn("could not tell the tasks why")
	}
	a.Store.Close()
	return &Error{Code: coordinatorExit(err), Err: err}
}

// coordinatorExit is the exit code for a coordinator that never ran: ExitGuard when its
// guard was not active, else ExitCoordinator.
func coordinatorExit(err error) int {
	var ge *coordinator.GuardError
	if errors.As(err, &ge) {
		return ExitGuard
	}
	return ExitCoordinator
}

// otherNodesWait bounds how long node 0 of a step across nodes keeps the coordinator for the
// tasks of the other nodes once its own have ended; the plugin waits 15 s for the agent.
const otherNodesWait = 10 * time.Second

// waitOtherNodes: the tasks of node 0 have ended, those of other nodes may still run (a rank
// restored later than the others ends later). Stopping the coordinator now would kill them
// (dmtcp_command -q ends every process of the computation): wait until none is left, at most
// max.
func (a *Agent) waitOtherNodes(ctx context.Context, max time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, max)
	defer cancel()
	logged := false
	for {
		st, err := a.Coord.Status(ctx)
		if err != nil || st.NumPeers == 0 {
			return
		}
		if !logged {
			a.Log.WithField("processes", st.NumPeers).Info("tasks of this node ended; waiting for those of the other nodes")
			logged = true
		}
		select {
		case <-ctx.Done():
			a.Log.WithField("processes", st.NumPeers).Warn("the other nodes' tasks still run: stopping the coordinator ends them")
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readyKVs are the pairs of every ready message: where the coordinator is and the step's
// folders.
func readyKVs(host string, port int, l Layout) []proto.KV {
	return []proto.KV{
		{Key: proto.KeyCoordHost, Value: host},
		{Key: proto.KeyCoordPort, Value: strconv.Itoa(port)},
		{Key: proto.KeyCkptDir, Value: l.CkptDir},
		{Key: proto.KeyStepDir, Value: l.StepDir},
		{Key: proto.KeyRunDir, Value: l.RunDir},
		{Key: proto.KeyTmpDir, Value: l.TmpDir},
		{Key: proto.KeyReportExit, Value: "1"},
	}
}

// Checkpoint takes one blocking checkpoint of every process of the step and commits it as a
// verified generation. A checkpoint that cannot complete leaves every earlier generation as
// it was. Progress goes to the agent log and one line to the job's error output.
func (a *Agent) Checkpoint(ctx context.Context, reason manifest.Reason) (generations.Committed, error) {
	return a.checkpoint(ctx, reason, false)
}

// checkpoint is Checkpoint; with stop every process of the computation exits right after
// writing its image (dmtcp_command -kc), so that nothing runs past the saved state, and the
// task launchers wait for the commit (proto.StoppingFile, proto.StoppedFile) before they
// end the step.
func (a *Agent) checkpoint(ctx context.Context, reason manifest.Reason, stop bool) (generations.Committed, error) {
	if !stop {
		if !a.Life.From(Checkpointing, Running) {
			return generations.Committed{}, fmt.Errorf("no checkpoint while the step is %s", a.Life.Phase())
		}
		defer a.Life.From(Running, Checkpointing)
	}
	var stage atomic.Value
	stage.Store("start")
	defer a.watchCheckpoint(ctx, a.Log.WithField("reason", string(reason)), time.Now(), &stage)()
	done := a.trackCheckpoint(reason) // for status requests on the control socket (control.go)
	stage.Store("preflight")
	c, err := a.takeCheckpoint(ctx, reason, stop, &stage)
	done(c, err)
	return c, err
}

// stopFoundNothing records that a stop found no process of the computation left: the
// programs ended by themselves (EndedAtStop), which the task launchers learn from
// proto.StopFoundNothingFile, written before proto.StoppedFile.
func (a *Agent) stopFoundNothing(log *logrus.Entry) error {
	log.Debug("checkpoint skipped: no process under DMTCP")
	if a.Life.To(EndedAtStop) == nil {
		a.mark(proto.StopFoundNothingFile)
	}
	return fmt.Errorf("no process under DMTCP")
}

// stopSkipped records that a stop took no checkpoint and left the programs running
// (StopSkipped), which the task launchers learn from proto.StopSkippedFile, written before
// proto.StoppedFile: a program that ends before Slurm kills it ends by itself, and a step
// whose every program did so is finished, not restored from an older generation to run
// that stretch again. Not for a step across nodes, whose other nodes' launchers end as
// stopped whatever this node does.
func (a *Agent) stopSkipped(err error) error {
	if !a.Config.AcrossNodes() && a.Life.To(StopSkipped) == nil {
		a.mark(proto.StopSkippedFile)
	}
	return err
}

// takeCheckpoint is checkpoint without the control socket's bookkeeping.
func (a *Agent) takeCheckpoint(ctx context.Context, reason manifest.Reason, stop bool, stage *atomic.Value) (generations.Committed, error) {
	log := a.Log.WithField("reason", string(reason))
	cctx, cancel := context.WithTimeout(ctx, a.CheckpointTimeout)
	defer cancel()
	start := time.Now()
	if stop {
		a.mark(proto.StoppingFile)
		defer a.mark(proto.StoppedFile)
		// Before anything that would skip the checkpoint: a stop that finds no process
		// left is the programs' own end, whatever the checkpoint folder's state.
		if st, err := a.Coord.Status(cctx); err == nil && st.NumPeers == 0 {
			return generations.Committed{}, a.stopFoundNothing(log)
		}
	}
	if err := a.preflight(); err != nil {
		log.WithError(err).Error("checkpoint skipped: checkpoint folder unusable")
		a.progress("checkpoint (%s) skipped: %v (DMTCP would end the application); earlier generations are untouched", reason, err)
		if stop {
			return generations.Committed{}, a.stopSkipped(err)
		}
		return generations.Committed{}, err
	}
	if a.Space != nil {
		stage.Store("space")
		if sp, err := a.Space(); err != nil {
			log.WithError(err).Warn("free space unknown")
		} else if !sp.fits(a.Config.Compress) {
			err := fmt.Errorf("the checkpoint folder %s has %d MiB free and the checkpoint needs about %d MiB", a.Layout.CkptDir, sp.Free>>20, sp.need(a.Config.Compress)>>20)
			log.WithError(err).Error("checkpoint skipped: not enough space")
			a.progress("checkpoint (%s) skipped: %v (DMTCP would end the application on a full disk); earlier generations are untouched; free space or lower plugstack.conf keep=", reason, err)
			if stop {
				return generations.Committed{}, a.stopSkipped(err)
			}
			return generations.Committed{}, err
		}
	}
	stage.Store("dmtcp")
	peers, err := a.requestCheckpoint(cctx, stop)
	stage.Store("commit")
	if stop && err != nil {
		a.kill(ctx)
	}
	if err != nil {
		log.WithError(err).Error("checkpoint failed")
		a.progress("checkpoint (%s) failed: %v; earlier generations are untouched", reason, err)
		a.clearCurrent()
		return generations.Committed{}, err
	}
	if peers == 0 {
		if stop {
			return generations.Committed{}, a.stopFoundNothing(log)
		}
		log.Debug("checkpoint skipped: no process under DMTCP")
		return generations.Committed{}, fmt.Errorf("no process under DMTCP")
	}
	pending, err := a.Store.Begin()
	if err != nil {
		log.WithError(err).Error("checkpoint: begin generation")
		return generations.Committed{}, err
	}
	images := checkpointImages(a.Layout.CkptDir, peers)
	if images < peers {
		log.WithFields(logrus.Fields{"images": images, "processes": peers}).Warn("checkpoint has fewer images than processes took part in it")
	}
	pending.ExpectImages(images)
	meta := a.Meta
	meta.Reason, meta.StartTime, meta.EndTime = reason, start, time.Now()
	if a.PerRank {
		if meta.Ranks, err = rankImages(a.Layout.CkptDir); err == nil {
			err = everyRank(meta.Ranks, a.Config.StepTasks)
		}
		if err != nil {
			pending.Abort()
			a.clearCurrent()
			log.WithError(err).Error("checkpoint: images by rank")
			a.progress("checkpoint (%s) not committed: %v; earlier generations are untouched", reason, err)
			return generations.Committed{}, err
		}
	}
	c, err := pending.CommitFrom(a.Layout.CkptDir, meta)
	if err != nil {
		a.clearCurrent()
		log.WithError(err).Error("checkpoint: commit generation")
		a.progress("checkpoint (%s) failed: %v; earlier generations are untouched", reason, err)
		return c, err
	}
	log.WithFields(logrus.Fields{"generation": c.Generation.Number, "bytes": c.Bytes, "files": c.Files,
		"processes": peers, "duration": c.Duration.Round(time.Millisecond).String(),
		"checkpoint_duration": meta.Duration().Round(time.Millisecond).String(), "pruned": c.Pruned}).Info("checkpoint written")
	a.progress("checkpoint (%s) %s, %d processes, DMTCP took %s", reason, c.String(), peers, meta.Duration().Round(time.Millisecond))
	a.Visible.checkpoint(c.Generation.Number, c.Bytes, meta)
	return c, nil
}

// waitRunning waits, at most max, until the coordinator says the computation runs again
// after a checkpoint.
func (a *Agent) waitRunning(ctx context.Context, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if st, err := a.Coord.Status(ctx); err != nil || st.Running || st.NumPeers == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settleMax bounds the wait for a moment when no process is starting, before a checkpoint.
const settleMax = time.Second

// requestCheckpoint asks for a blocking checkpoint, waiting out one already in progress,
// and returns how many processes took part.
func (a *Agent) requestCheckpoint(ctx context.Context, thenExit bool) (int, error) {
	asked := false
	for {
		st, err := a.Coord.Status(ctx)
		if err != nil {
			return 0, err
		}
		if st.NumPeers == 0 {
			if asked {
				// A request that failed may still have ended the computation (DMTCP kills
				// it after a checkpoint that went wrong, exit 0): that is no proof that
				// the programs ended by themselves.
				return 0, fmt.Errorf("the computation ended while DMTCP checkpointed it")
			}
			return 0, nil
		}
		if st.Running {
			// No checkpoint runs: anything in the checkpoint folder is left by one that
			// failed or outlived its time-out, and must not be committed with this one.
			if err := clearDir(a.Layout.CkptDir); err != nil {
				return 0, fmt.Errorf("clear the checkpoint folder %s: %w", a.Layout.CkptDir, err)
			}
			request := a.Coord.Checkpoint
			if thenExit {
				request = a.Coord.CheckpointAndKill
			}
			// No fork in flight while DMTCP suspends the computation: DMTCP 5.0 ends a
			// process whose fork it sees then (dmtcpplugin/forklock.c). Held before the
			// settle below, so that no process starts between the two.
			held, release := a.forks.hold(ctx, forkLockWait)
			if !held && a.forks != nil {
				a.Log.Warn("checkpoint asked for while a fork may be in flight")
			}
			// Not while a process is starting: DMTCP would leave it out or save it half
			// made (coordinator.Starting). Bounded: a checkpoint is never put off for long.
			if why := a.Coord.Settle(ctx, settleMax); why != "" {
				a.Log.WithField("starting", why).Warn("checkpoint taken while a process is still starting")
			}
			asked = true
			err := request(ctx)
			if err == nil && !thenExit {
				a.waitRunning(ctx, forkLockWait)
			}
			release()
			if err == nil {
				return st.NumPeers, nil
			} else if ctx.Err() != nil {
				return 0, err
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("checkpoint did not complete: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkpointWatchEvery is how often a checkpoint that is still running is logged.
const checkpointWatchEvery = 2 * time.Second

// watchCheckpoint logs, with the stage it is in (start, preflight, space, dmtcp, commit), every checkpointWatchEvery until the returned stop is called, that a
// checkpoint is still running, with the coordinator's view of it and the images written so
// far, so that a checkpoint cut short by Slurm's SIGKILL still leaves a trace of where it was.
func (a *Agent) watchCheckpoint(ctx context.Context, log *logrus.Entry, start time.Time, stage *atomic.Value) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(checkpointWatchEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			images, _ := filepath.Glob(filepath.Join(a.Layout.CkptDir, "ckpt_*.dmtcp*"))
			script, _ := coordinator.NewestRestartScript(a.Layout.CkptDir)
			fields := logrus.Fields{"elapsed": time.Since(start).Round(time.Millisecond).String(), "stage": stage.Load(),
				"images": len(images), "restart_script": script != ""}
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			if st, err := a.Coord.Status(sctx); err != nil {
				fields["coordinator"] = err.Error()
			} else {
				fields["peers"], fields["running"] = st.NumPeers, st.Running
			}
			cancel()
			log.WithFields(fields).Warn("checkpoint still running")
		}
	}()
	return func() { close(done); <-finished }
}

// preflight makes sure DMTCP can write where it will: the step's folders exist again if
// they were removed while the job ran (as the job's user, 0700, no links), and a file can be
// created where DMTCP writes. DMTCP ends the application when it cannot write its images.
func (a *Agent) preflight() error {
	for _, d := range []string{a.Layout.JobDir, a.Layout.StepDir, a.Layout.CkptDir} {
		if d == "" {
			continue
		}
		if err := safepath.PrivateDir("checkpoint_dir", d, os.Getuid()); err != nil {
			return err
		}
	}
	f, err := os.CreateTemp(a.Layout.CkptDir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("cannot write in %s: %w", a.Layout.CkptDir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// clearCurrent removes what a failed checkpoint left where DMTCP writes, unless the
// coordinator says that a checkpoint still runs (one that outlived its time-out): its
// processes still write their images there, and removing them would fail the checkpoint
// under DMTCP's feet (DMTCP ends a process that cannot write its image). It is then left for
// the next checkpoint, which clears it first.
func (a *Agent) clearCurrent() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st, err := a.Coord.Status(ctx); err == nil && !st.Running && st.NumPeers > 0 {
		a.Log.Warn("a checkpoint still runs: what it writes stays in the checkpoint folder until the next checkpoint")
		return
	}
	if err := clearDir(a.Layout.CkptDir); err != nil {
		a.Log.WithError(err).Warn("could not clear the checkpoint folder after a failure")
	}
}

// mark creates an empty marker file in the runtime folder for the task launchers.
func (a *Agent) mark(name string) {
	markRunDir(a.Layout.RunDir, name, a.Log)
}

// markRunDir creates the empty marker file name in runDir, where the task launchers look.
func markRunDir(runDir, name string, log *logrus.Entry) {
	if f, err := os.OpenFile(filepath.Join(runDir, name), os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
		f.Close()
	} else {
		log.WithError(err).Warn("marker for the task launchers")
	}
}

// kill ends the computation (after a checkpoint), so nothing runs past the saved state.
func (a *Agent) kill(ctx context.Context) {
	kctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.Coord.Kill(kctx); err != nil {
		a.Log.WithError(err).Warn("could not end the computation after the checkpoint")
	}
}

// progress writes one line for the user to the job's error output (Agent.Progress).
// A line that cannot be written yet (the task has not said where its error output is: the
// agent may verify a generation to restore before the task launcher runs) is kept, and
// written before the next line that can be.
func (a *Agent) progress(format string, args ...any) {
	if a.Progress == nil {
		return
	}
	a.progressMu.Lock()
	defer a.progressMu.Unlock()
	a.undelivered = append(a.undelivered, fmt.Sprintf("slurm-dmtcp: "+format+"\n", args...))
	if n := len(a.undelivered); n > maxUndelivered {
		a.undelivered = a.undelivered[n-maxUndelivered:]
	}
	a.deliverLocked()
}

// flushProgress writes the lines progress kept, if the task can be reached now.
func (a *Agent) flushProgress() {
	if a.Progress == nil {
		return
	}
	a.progressMu.Lock()
	defer a.progressMu.Unlock()
	a.deliverLocked()
}

func (a *Agent) deliverLocked() {
	if len(a.undelivered) == 0 {
		return
	}
	w := a.Progress()
	if w == nil {
		return
	}
	defer w.Close()
	for _, l := range a.undelivered {
		_, _ = io.WriteString(w, l)
	}
	a.undelivered = a.undelivered[:0]
}

// maxUndelivered bounds the lines progress keeps for a task that cannot be reached yet.
const maxUndelivered = 32

// shutdown stops the coordinator and removes the runtime folder; alongside, when set, runs
// while the coordinator exits (the plugin waits for the agent's exit before Slurm hears that
// the step's tasks ended).
func (a *Agent) shutdown(alongside func()) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		if alongside != nil {
			alongside()
		}
		a.Visible.flush(commentFlushMax)
		close(done)
	}()
	err := a.Coord.Quit(ctx)
	<-done
	a.Store.Close()
	if errors.Is(err, coordinator.ErrGone) {
		err = nil
	}
	if cerr := a.cleanup(); err == nil {
		err = cerr
	}
	if err != nil {
		a.Log.WithError(err).Error("shutdown")
		return err
	}
	a.Log.Info("agent stopped cleanly")
	return nil
}

// cleanup removes the step's runtime folder, and its per-user parent when that is empty.
func (a *Agent) cleanup() error {
	return removeRunDir(a.Layout.RunDir)
}

// removeRunDir removes a step's runtime folder, and its per-user parent when that is empty.
func removeRunDir(runDir string) error {
	if err := os.RemoveAll(runDir); err != nil {
		return fmt.Errorf("remove %s: %w", runDir, err)
	}
	_ = os.Remove(filepath.Dir(runDir))
	return nil
}
