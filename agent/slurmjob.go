package agent

import (
	"context"

	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
)

// SlurmJob reads and requeues the agent's own job through scontrol, as the job's user.
type SlurmJob struct {
	ID string
}

// Info asks slurmctld about the job (scontrol show job -o). slurmstepd does not hand the
// batch step its restart count before the script's environment is built, and the end time
// moves when an administrator changes the time limit, so the agent asks Slurm itself.
func (j SlurmJob) Info(ctx context.Context) (slurm.Job, error) {
	return slurm.ShowJob(ctx, j.scontrol(), j.ID)
}

// Requeue sends the job back to the queue; Slurm then signals its steps (SIGTERM).
func (j SlurmJob) Requeue(ctx context.Context) error {
	_, err := j.scontrol()(ctx, "requeue", j.ID)
	return err
}

func (j SlurmJob) scontrol() slurm.Runner { return slurm.Scontrol("scontrol", slurm.DefaultTimeout) }
