package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/slurm-dmtcp/slurm-dmtcp/coordinator"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// Exit codes of slurm-dmtcp-agent (also in README.md).
const (
	ExitOK          = 0
	ExitFailure     = 1 // anything else, see the message
	ExitUsage       = 2 // bad command line: plugin and agent disagree
	ExitNoDMTCP     = 3 // DMTCP not found or not runnable
	ExitCoordinator = 4 // the coordinator would not start or died
	ExitFolders     = 5 // a checkpoint or runtime folder could not be made safe
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
	Quit(ctx context.Context) error
	Done() <-chan struct{}
}

// Layout is where a step's files go.
type Layout struct {
	JobDir  string // expanded checkpoint_dir: survives the job, holds every step
	StepDir string // JobDir/<step>: agent.log, checkpoints of this step
	CkptDir string // StepDir/current: where DMTCP writes images
	RunDir  string // runtime_dir/slurm-dmtcp-<uid>/<job>.<step>: removed at the end
	TmpDir  string // RunDir/tmp: DMTCP's temporary files
}

// NewLayout computes and creates the step's folders as the current (job's) user.
func NewLayout(c Config, u *user.User) (Layout, error) {
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return Layout{}, fmt.Errorf("uid %q: %w", u.Uid, err)
	}
	jobDir, err := ExpandTemplate(c.CkptTemplate, u, c.JobID)
	if err != nil {
		return Layout{}, err
	}
	l := Layout{JobDir: jobDir, StepDir: filepath.Join(jobDir, c.StepName())}
	l.CkptDir = filepath.Join(l.StepDir, "current")
	base := filepath.Join(c.RuntimeDir, "slurm-dmtcp-"+u.Uid)
	l.RunDir = filepath.Join(base, c.JobID+"."+c.StepName())
	l.TmpDir = filepath.Join(l.RunDir, "tmp")
	for _, d := range []string{l.JobDir, l.StepDir, l.CkptDir, base, l.RunDir, l.TmpDir} {
		if err := PrivateDir(d, uid); err != nil {
			return Layout{}, err
		}
	}
	return l, nil
}

// Agent runs one step's coordinator and checkpoints.
type Agent struct {
	Config Config
	Layout Layout
	Coord  Coordinator
	Log    *logrus.Entry
	// CheckpointTimeout bounds one checkpoint request.
	CheckpointTimeout time.Duration
}

// Serve tells the plugin where the coordinator is (on ready), then takes periodic
// checkpoints until the lifeline reaches EOF (the plugin closed it: the step's tasks are
// done, or slurmstepd is gone). It then stops the coordinator and removes RunDir.
func (a *Agent) Serve(ctx context.Context, host string, port int, ready io.Writer, lifeline io.Reader) error {
	err := proto.WriteReady(ready, []proto.KV{
		{Key: proto.KeyCoordHost, Value: host},
		{Key: proto.KeyCoordPort, Value: strconv.Itoa(port)},
		{Key: proto.KeyCkptDir, Value: a.Layout.CkptDir},
		{Key: proto.KeyStepDir, Value: a.Layout.StepDir},
		{Key: proto.KeyRunDir, Value: a.Layout.RunDir},
		{Key: proto.KeyTmpDir, Value: a.Layout.TmpDir},
	})
	if err != nil {
		return fmt.Errorf("tell the plugin we are ready: %w", err)
	}
	a.Log.WithFields(logrus.Fields{"coord_host": host, "coord_port": port, "interval": a.Config.Interval.String(),
		"checkpoint_dir": a.Layout.CkptDir}).Info("coordinator ready")

	stop := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, lifeline)
		close(stop)
	}()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	var tick <-chan time.Time
	var timer *time.Timer
	if a.Config.Interval > 0 {
		timer = time.NewTimer(a.Config.Interval)
		defer timer.Stop()
		tick = timer.C
	}
	for {
		select {
		case <-stop:
			a.Log.Info("step finished: stopping the coordinator")
			return a.shutdown()
		case <-ctx.Done():
			return a.shutdown()
		case <-a.Coord.Done():
			_ = a.cleanup()
			return fail(ExitCoordinator, "dmtcp_coordinator exited while the step was running; see %s", filepath.Join(a.Layout.RunDir, "coordinator.log"))
		case s := <-sigs:
			// Slurm signals every process of the step; the step's end comes through the lifeline.
			a.Log.WithField("signal", s.String()).Info("signal received; waiting for the step to end")
		case <-tick:
			a.checkpoint(ctx, "periodic")
			timer.Reset(a.Config.Interval) // measured from the end of the previous checkpoint
		}
	}
}

// checkpoint asks for one blocking checkpoint and logs its size and duration.
func (a *Agent) checkpoint(ctx context.Context, reason string) {
	log := a.Log.WithField("reason", reason)
	st, err := a.Coord.Status(ctx)
	if err != nil {
		log.WithError(err).Warn("checkpoint skipped: coordinator status")
		return
	}
	if st.NumPeers == 0 {
		log.Debug("checkpoint skipped: no process under DMTCP yet")
		return
	}
	cctx, cancel := context.WithTimeout(ctx, a.CheckpointTimeout)
	defer cancel()
	start := time.Now()
	if err := a.Coord.Checkpoint(cctx); err != nil {
		log.WithError(err).Error("checkpoint failed")
		return
	}
	d := time.Since(start)
	size, files := dirSize(a.Layout.CkptDir)
	log.WithFields(logrus.Fields{"duration": d.Round(time.Millisecond).String(), "bytes": size, "files": files,
		"processes": st.NumPeers}).Info("checkpoint written")
}

func dirSize(dir string) (int64, int) {
	var size int64
	var n int
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				size += info.Size()
				n++
			}
		}
		return nil
	})
	return size, n
}

func (a *Agent) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := a.Coord.Quit(ctx)
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
	if err := os.RemoveAll(a.Layout.RunDir); err != nil {
		return fmt.Errorf("remove %s: %w", a.Layout.RunDir, err)
	}
	_ = os.Remove(filepath.Dir(a.Layout.RunDir))
	return nil
}
