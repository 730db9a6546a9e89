package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/slurm-dmtcp/slurm-dmtcp/coordinator"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
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
	readyErr := func(err error) error {
		_ = proto.WriteError(ready, err.Error())
		return err
	}
	if os.Geteuid() == 0 || os.Getuid() == 0 {
		return readyErr(fail(ExitFailure, "slurm-dmtcp-agent never runs as root"))
	}
	u, err := user.Current()
	if err != nil {
		return readyErr(fail(ExitFailure, "who am I: %v", err))
	}
	layout, err := NewLayout(cfg, u)
	if err != nil {
		return readyErr(&Error{Code: ExitFolders, Err: err})
	}
	logFile, err := os.OpenFile(layout.StepDir+"/agent.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return readyErr(fail(ExitFolders, "agent log: %v", err))
	}
	defer logFile.Close()
	log := NewLogger(logFile, logrus.Fields{"job_id": cfg.JobID, "step": cfg.Step, "user": u.Username,
		"restart_count": cfg.RestartCount})
	log.WithField("pid", os.Getpid()).Info("agent starting")

	inst, err := coordinator.Find(cfg.DMTCPPrefix, os.Getenv("PATH"))
	if err != nil {
		log.WithError(err).Error("DMTCP not found")
		return readyErr(&Error{Code: ExitNoDMTCP, Err: err})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	coord, err := coordinator.Start(ctx, coordinator.Options{Install: inst, RunDir: layout.RunDir,
		CkptDir: layout.CkptDir, TmpDir: layout.TmpDir})
	cancel()
	if err != nil {
		log.WithError(err).Error("coordinator")
		_ = os.RemoveAll(layout.RunDir)
		return readyErr(&Error{Code: ExitCoordinator, Err: err})
	}
	a := &Agent{Config: cfg, Layout: layout, Coord: coord, Log: log, CheckpointTimeout: 30 * time.Minute}
	return a.Serve(context.Background(), coord.Host, coord.Port, ready, lifeline)
}
