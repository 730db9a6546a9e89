package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/history"
	"github.com/slurm-dmtcp/slurm-dmtcp/coordinator"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/cache"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/facts"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto/manifest"
)

// ExitIncompatible: the checkpoint to restore was taken on a node this one cannot restore
// (the job was requeued to a compatible node, held, or failed by policy).
const ExitIncompatible = 7

// Policies for a checkpoint this node cannot restore (plugstack.conf on_incompatible=).
const (
	OnIncompatibleRequeue = "requeue"
	OnIncompatibleFail    = "fail"
)

// NodeFactsTimeout bounds reading (or collecting) this node's facts at agent start.
const NodeFactsTimeout = 5 * time.Second

// NodeFacts is what the agent knows of this node, and where it came from.
type NodeFacts struct {
	Facts  facts.Facts
	Source string // "cache PATH (probed TIME)" or "collected now (...)"
	Err    error  // neither worked: no facts
}

// LoadNodeFacts reads this node's facts from the probe's cache (read-only: the probe
// service may be writing it), or collects them now when there is no usable cache or it is
// stale: its kernel, vDSO or glibc differ from this process's (a reboot or an upgrade since
// the last probe; facts.Quick). Bounded by timeout; it never fails the caller: Err says why
// there are no facts.
func LoadNodeFacts(ctx context.Context, cachePath, dmtcpPrefix string, timeout time.Duration) NodeFacts {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan NodeFacts, 1)
	go func() { done <- loadNodeFacts(cachePath, dmtcpPrefix, timeout) }()
	select {
	case nf := <-done:
		return nf
	case <-ctx.Done():
		return NodeFacts{Err: fmt.Errorf("node facts: not read within %s (cache %s)", timeout, cachePath)}
	}
}

func loadNodeFacts(cachePath, dmtcpPrefix string, timeout time.Duration) NodeFacts {
	why := "no cache configured"
	if cachePath != "" {
		f, last, err := readCache(cachePath, timeout)
		if err != nil {
			why = err.Error()
		} else if now, qerr := facts.Quick(facts.Options{}); qerr != nil {
			why = qerr.Error()
		} else if stale := facts.StaleAgainst(f, now); stale != "" {
			why = fmt.Sprintf("cache %s is stale: it holds %s", cachePath, stale)
		} else {
			return NodeFacts{Facts: f, Source: fmt.Sprintf("cache %s (probed %s)", cachePath, last.Format(time.RFC3339))}
		}
	}
	f, err := facts.Collect(facts.Options{DMTCPPrefix: dmtcpPrefix, CommandTimeout: timeout})
	if err != nil {
		return NodeFacts{Err: fmt.Errorf("node facts: %s; collecting them now: %w", why, err)}
	}
	return NodeFacts{Facts: f, Source: "collected now (" + why + ")"}
}

func readCache(path string, timeout time.Duration) (facts.Facts, time.Time, error) {
	c, err := cache.OpenReadOnly(path, cache.WithBusyTimeout(min(timeout/2, 2*time.Second)))
	if err != nil {
		return facts.Facts{}, time.Time{}, err
	}
	defer c.Close()
	e, err := c.Latest()
	if err != nil {
		return facts.Facts{}, time.Time{}, err
	}
	return e.Facts, e.LastSeen, nil
}

// ManifestFacts is the JSON for manifest.Meta.NodeFacts, nil without facts.
func (n NodeFacts) ManifestFacts() json.RawMessage {
	if n.Err != nil {
		return nil
	}
	b, err := json.Marshal(n.Facts)
	if err != nil {
		return nil
	}
	return b
}

// Requeuer sends the job back to the queue constrained to feature: requeuehold, add the
// constraint, release. A field of Placement, so that tests can replace it.
type Requeuer func(ctx context.Context, jobID, feature string) (RequeueResult, error)

// RequeueResult says what the requeue did.
type RequeueResult struct {
	Constraint string // the job's Features= after the update
	Held       bool   // the job stays held (the constraint was refused or would loop)
	Why        string // why it stays held
}

// Placement decides whether the generation chosen for a restore may be restored here.
type Placement struct {
	Policy  string // OnIncompatibleRequeue or OnIncompatibleFail
	Node    NodeFacts
	Requeue Requeuer
	Log     *logrus.Entry
	// Requeued, when set, records that the job was requeued (held or not) to restore the
	// generation folder gen elsewhere: detail says where.
	Requeued func(gen, detail string)
}

// Check runs after restorePlan: when extra names a generation to restore, it compares the
// generation's node facts with this node's. Compatible (or unknown): extra is returned with
// a note added. Incompatible: the job is requeued to nodes of the checkpoint's class (or
// held, or failed, by policy) and the error, which names what differed, goes to the job's
// error output through the plugin; nothing is restored.
func (p Placement) Check(ctx context.Context, cfg Config, extra []proto.KV) ([]proto.KV, error) {
	gen := ""
	for _, kv := range extra {
		if kv.Key == proto.KeyRestore {
			gen = kv.Value
		}
	}
	if gen == "" {
		return extra, nil
	}
	m, err := manifest.Read(gen)
	if err != nil { // it verified a moment ago
		return extra, nil
	}
	name := filepath.Base(gen)
	if len(m.NodeFacts) == 0 {
		p.Log.WithField("generation", m.Generation).Warn("checkpoint has no node facts: restoring without a compatibility check")
		return addNote(extra, fmt.Sprintf("%s carries no node facts: restoring without a compatibility check", name)), nil
	}
	ckpt, err := facts.Decode(strings.NewReader(string(m.NodeFacts)))
	if err != nil {
		p.Log.WithError(err).Warn("checkpoint node facts unreadable: restoring without a compatibility check")
		return addNote(extra, fmt.Sprintf("node facts of %s unreadable (%v): restoring without a compatibility check", name, err)), nil
	}
	if p.Node.Err != nil {
		p.Log.WithError(p.Node.Err).Warn("this node's facts are unknown: restoring without a compatibility check")
		return addNote(extra, fmt.Sprintf("this node's facts are unknown (%v): restoring without a compatibility check", p.Node.Err)), nil
	}
	ok, diffs := facts.Compatible(ckpt, p.Node.Facts)
	ckptClass, nodeClass := facts.Class(ckpt), facts.Class(p.Node.Facts)
	log := p.Log.WithFields(logrus.Fields{"generation": m.Generation, "checkpoint_class": ckptClass,
		"node_class": nodeClass, "node_facts": p.Node.Source})
	var blocking, warnings []string
	for _, d := range diffs {
		switch d.Severity {
		case facts.Blocking:
			blocking = append(blocking, d.Why)
		case facts.Warning:
			warnings = append(warnings, d.Why)
		}
	}
	if ok {
		log.WithField("warnings", len(warnings)).Info("checkpoint compatible with this node")
		if len(warnings) > 0 {
			return addNote(extra, fmt.Sprintf("%s (class %s) restores on this node (class %s) with warnings: %s",
				name, ckptClass, nodeClass, strings.Join(warnings, "; "))), nil
		}
		return extra, nil
	}
	what := fmt.Sprintf("restart %d: checkpoint %s was taken on node %s (class %s) and cannot be restored on this node %s (class %s): %s",
		cfg.RestartCount, name, m.Node, ckptClass, orUnknown(p.Node.Facts.Hostname), nodeClass, strings.Join(blocking, "; "))
	feature, _ := slurm.Feature(ckptClass)
	log = log.WithField("blocking", len(blocking))
	if p.Policy == OnIncompatibleFail || cfg.Step != "batch" {
		log.Error("checkpoint incompatible with this node: failing the job (on_incompatible=fail)")
		how := "plugstack.conf on_incompatible=fail"
		if cfg.Step != "batch" {
			how = "only batch jobs are requeued"
		}
		return nil, fail(ExitIncompatible, "%s. Nothing was restored and the job fails (%s); its checkpoints stay in %s for a node with feature %s",
			what, how, filepath.Dir(gen), feature)
	}
	rq, err := p.Requeue(ctx, cfg.JobID, feature)
	if err != nil {
		log.WithError(err).Error("checkpoint incompatible with this node; requeue failed")
		return nil, fail(ExitIncompatible, "%s. Nothing was restored; requeueing the job to nodes with feature %s failed: %w", what, feature, err)
	}
	if p.Requeued != nil {
		detail := fmt.Sprintf("class %s cannot restore it here (node class %s): Features=%s", ckptClass, nodeClass, rq.Constraint)
		if rq.Held {
			detail = fmt.Sprintf("class %s cannot restore it here (node class %s): held: %s", ckptClass, nodeClass, rq.Why)
		}
		p.Requeued(gen, detail)
	}
	if rq.Held {
		log.WithField("why", rq.Why).Error("checkpoint incompatible with this node: job requeued and held")
		return nil, fail(ExitIncompatible, "%s. Nothing was restored; the job was requeued and is held: %s", what, rq.Why)
	}
	log.WithField("constraint", rq.Constraint).Warn("checkpoint incompatible with this node: job requeued to compatible nodes")
	return nil, fail(ExitIncompatible, "%s. Nothing was restored; the job was requeued, constrained to nodes of the checkpoint's class (Features=%s)",
		what, rq.Constraint)
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// addNote appends note to the restore note of extra.
func addNote(extra []proto.KV, note string) []proto.KV {
	out := make([]proto.KV, 0, len(extra)+1)
	added := false
	for _, kv := range extra {
		if kv.Key == proto.KeyRestoreNote {
			kv.Value += " | " + note
			added = true
		}
		out = append(out, kv)
	}
	if !added {
		out = append(out, proto.KV{Key: proto.KeyRestoreNote, Value: note})
	}
	return out
}

// ScontrolRequeue is the Requeuer of a real job, as the job's user (Slurm lets a user
// requeue, update and release their own job): requeuehold first, so the job cannot start
// again on an incompatible node; then Features= with the checkpoint's class added to the
// job's own constraint; then release. When slurmctld refuses the constraint (no node
// publishes that class), or the job already required it (this node publishes a class its
// facts no longer have), the job stays held and Why says what to do.
func ScontrolRequeue(scontrol string, timeout time.Duration) Requeuer {
	return func(ctx context.Context, jobID, feature string) (RequeueResult, error) {
		run := slurm.Scontrol(scontrol, timeout)
		out, err := run(ctx, "show", "job", "-o", jobID)
		if err != nil {
			return RequeueResult{}, err
		}
		existing := slurm.ParseRecord(string(out)).Value("Features")
		// requeuehold ends this run of the job: Slurm sends SIGTERM to everything in it,
		// this agent too, which must live until the job is released.
		signal.Ignore(syscall.SIGTERM)
		if _, err := run(ctx, "requeuehold", jobID); err != nil {
			return RequeueResult{}, err
		}
		if strings.Contains(existing, feature) {
			return RequeueResult{Constraint: existing, Held: true, Why: fmt.Sprintf(
				"the job already required feature %s, yet this node, which publishes it, differs: its published class is stale "+
					"(run slurm-dmtcp-nodeprobe publish on it); then release the job with: scontrol release %s", feature, jobID)}, nil
		}
		constraint := slurm.Constraint(existing, feature)
		then := fmt.Sprintf("once an administrator has run slurm-dmtcp-nodeprobe publish on nodes of that class: "+
			"scontrol update JobId=%s Features=%s; scontrol release %s", jobID, constraint, jobID)
		// slurmctld accepts a feature it has seen on a node that has lost it since, and the
		// job would then wait for ever: ask which nodes offer it (regular users may list nodes
		// unless PrivateData hides them; then the update decides).
		if nodes, err := slurm.ShowNodes(ctx, run, ""); err == nil && len(nodes) > 0 && !offered(nodes, feature) {
			return RequeueResult{Constraint: existing, Held: true, Why: fmt.Sprintf(
				"no node publishes the checkpoint's class (feature %s); %s", feature, then)}, nil
		}
		if _, err := run(ctx, "update", "JobId="+jobID, "Features="+constraint); err != nil {
			return RequeueResult{Constraint: existing, Held: true, Why: fmt.Sprintf(
				"Slurm refused Features=%s (%v); %s", constraint, err, then)}, nil
		}
		if _, err := run(ctx, "release", jobID); err != nil {
			return RequeueResult{Constraint: constraint, Held: true, Why: fmt.Sprintf("release failed (%v): scontrol release %s", err, jobID)}, nil
		}
		return RequeueResult{Constraint: constraint}, nil
	}
}

// offered tells whether any node has feature among its available features.
func offered(nodes []slurm.Node, feature string) bool {
	for _, n := range nodes {
		if slices.Contains(n.AvailableFeatures, feature) {
			return true
		}
	}
	return false
}

// scontrolPath is scontrol in the agent's PATH (the plugin fixes it), for ScontrolRequeue.
func scontrolPath() string {
	if p, err := exec.LookPath("scontrol"); err == nil {
		return p
	}
	return "scontrol"
}

// loadFacts reads (or collects) this node's facts, with the DMTCP the agent itself finds.
func loadFacts(cfg Config) NodeFacts {
	prefix := cfg.DMTCPPrefix
	if prefix == "" { // where the agent itself finds DMTCP, so that live facts name its version
		if inst, err := coordinator.Find("", os.Getenv("PATH")); err == nil {
			prefix = filepath.Dir(inst.Bin)
		}
	}
	return LoadNodeFacts(context.Background(), cfg.NodeprobeCache, prefix, NodeFactsTimeout)
}

// placeRestore checks the generation restorePlan chose against this node's facts (see
// Placement.Check) and returns the facts for the manifests of this run's checkpoints.
func placeRestore(cfg Config, node NodeFacts, extra []proto.KV, vis *visible, log *logrus.Entry) ([]proto.KV, json.RawMessage, error) {
	if node.Err != nil {
		log.WithError(node.Err).Warn("node facts unavailable: checkpoints of this run carry no node_facts and restores are not checked")
	} else {
		log.WithFields(logrus.Fields{"class": facts.Class(node.Facts), "source": node.Source}).Info("node facts")
	}
	p := Placement{Policy: cfg.OnIncompatible, Node: node, Requeue: ScontrolRequeue(scontrolPath(), 30*time.Second), Log: log,
		Requeued: func(gen, detail string) {
			vis.requeueGeneration(history.WhyPlacement, gen, detail)
			vis.flush(commentFlushMax) // the agent ends right after
		}}
	extra, err := p.Check(context.Background(), cfg, extra)
	return extra, node.ManifestFacts(), err
}
