package agent

import (
	"context"
	"fmt"
	"time"
)

// restartAsk bounds how long the agent asks Slurm for the batch step's restart count (a
// requeued job starts while slurmctld is busy with it); it answers slurmstepd well within
// agent_timeout.
const (
	restartAsk      = 8 * time.Second
	restartAskPause = 500 * time.Millisecond
)

// batchRestartCount is the restart count of a batch step whose folder an earlier run left
// (slurmstepd does not pass SLURM_RESTART_COUNT to the batch step's user_init): Slurm's
// Restarts=, asked a few times within restartAsk. When Slurm cannot say, the earlier run's
// folder is proof enough that the job ran before: the count is taken as 1 and the reason is
// returned for the job's error output, so that the step is restored, never silently started
// from the top.
func batchRestartCount(ctx context.Context, job Job, pause time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, restartAsk)
	defer cancel()
	var last error
	for {
		info, err := job.Info(ctx)
		if err == nil {
			return info.Restarts, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return 1, fmt.Errorf("Slurm did not say how often the job was restarted (%v); an earlier run of this "+
				"step left its folder, so this run is taken for a restart", last)
		case <-time.After(pause):
		}
	}
}
