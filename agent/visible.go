package agent

import (
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/history"
	"github.com/slurm-dmtcp/slurm-dmtcp/agent/jobcomment"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto/manifest"
)

// commentFlushMax bounds how long the agent's end waits for the job's Comment to be set.
const commentFlushMax = 3 * time.Second

// visible is what the agent shows outside itself: the step's history file (dmtcpctl history)
// and the job's Comment (squeue, scontrol show job, sacct). Neither may hold up or fail a
// checkpoint: failures are warnings in agent.log. A nil *visible records nothing.
type visible struct {
	stepDir, step, node string
	restart             int
	comment             *jobcomment.Publisher // nil: the Comment is not set
	log                 *logrus.Entry

	mu    sync.Mutex
	shown jobcomment.State
}

// newVisible records for the step of cfg in stepDir; comment may be nil.
func newVisible(cfg Config, stepDir, node string, comment *jobcomment.Publisher, log *logrus.Entry) *visible {
	return &visible{stepDir: stepDir, step: cfg.Step, node: node, restart: cfg.RestartCount, comment: comment, log: log,
		shown: jobcomment.State{Step: cfg.Step}}
}

// slurmComment is the Publisher of the job's Comment through squeue and scontrol in PATH.
func slurmComment(jobID string, log *logrus.Entry) *jobcomment.Publisher {
	return &jobcomment.Publisher{JobID: jobID, Squeue: slurm.Squeue("squeue", slurm.DefaultTimeout),
		Scontrol: slurm.Scontrol(scontrolPath(), slurm.DefaultTimeout), Timeout: slurm.DefaultTimeout, Log: log}
}

func (v *visible) append(e history.Event) {
	e.Restart = v.restart
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if err := history.Append(v.stepDir, e); err != nil {
		v.log.WithError(err).Warn("history not recorded")
	}
}

// publish sets the Comment to the state change makes of the one shown.
func (v *visible) publish(change func(*jobcomment.State)) {
	v.mu.Lock()
	change(&v.shown)
	s := v.shown
	v.mu.Unlock()
	v.comment.Set(s)
}

// checkpoint records generation gen, committed. A requeue the agent made in this run stays
// in the Comment: the checkpoint that Slurm's SIGTERM asks for after it is the run's last.
func (v *visible) checkpoint(gen int, bytes int64, meta manifest.Meta) {
	if v == nil {
		return
	}
	v.append(history.Event{Time: meta.EndTime, Kind: history.KindCheckpoint, Generation: gen, Reason: string(meta.Reason),
		Bytes: bytes, DurationS: meta.Duration().Seconds(), Node: v.node})
	v.publish(func(s *jobcomment.State) {
		s.Generation, s.At, s.Bytes = gen, meta.EndTime, bytes
	})
}

// restore records that the step's tasks restore the generation folder gen (attempt 1, or
// more when a failed restore is retried).
func (v *visible) restore(gen string, attempt int) {
	if v == nil || gen == "" {
		return
	}
	e := history.Event{Kind: history.KindRestore, Generation: generationNumber(gen), Attempt: attempt, Node: v.node}
	m, err := manifest.Read(gen)
	if err == nil {
		e.Reason, e.Bytes = string(m.Reason), m.TotalSize()
	}
	// The Comment keeps the reason of the agent's requeue that led to this run until a newer
	// generation is committed.
	why := ""
	if evs, _, herr := history.Read(v.stepDir); herr == nil && len(evs) > 0 && evs[len(evs)-1].Kind == history.KindRequeue {
		why = evs[len(evs)-1].Why
	}
	v.append(e)
	if err != nil {
		return
	}
	v.publish(func(s *jobcomment.State) {
		s.Generation, s.At, s.Bytes = m.Generation, m.EndTime, m.TotalSize()
		if s.Requeue == "" {
			s.Requeue = why
		}
	})
}

// requeue records that the agent requeued the job (why: history.Why*), with the generation
// the next run restores (0: the newest) and what happened in words.
func (v *visible) requeue(why string, gen int, detail string) {
	if v == nil {
		return
	}
	v.append(history.Event{Kind: history.KindRequeue, Why: why, Generation: gen, Detail: detail, Node: v.node})
	v.publish(func(s *jobcomment.State) { s.Requeue = why })
}

// requeueGeneration is requeue for the generation folder gen, whose manifest names what the
// Comment shows (the agent knows no generation of this run yet).
func (v *visible) requeueGeneration(why, gen, detail string) {
	if v == nil {
		return
	}
	if m, err := manifest.Read(gen); err == nil {
		v.mu.Lock()
		v.shown.Generation, v.shown.At, v.shown.Bytes = m.Generation, m.EndTime, m.TotalSize()
		v.mu.Unlock()
	}
	v.requeue(why, generationNumber(gen), detail)
}

// flush waits, at most max, for the Comment.
func (v *visible) flush(max time.Duration) {
	if v == nil {
		return
	}
	v.comment.Flush(max)
}
