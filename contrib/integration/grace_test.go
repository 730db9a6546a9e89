//go:build integration

package integration

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Since Slurm 24.05.0 (SchedMD commit a689104d, bug 16263) a job in the grace time of its
// preemption carries the GRACE_PREEMPT flag (src/interfaces/preempt.c,
// _job_check_grace_internal), and a batch job that completes while it has the flag is
// requeued (src/slurmctld/proc_req.c, _slurm_rpc_complete_batch_script), whatever its exit.
// Only that requeue clears the flag (job_mgr.c, _job_complete). Two behaviours follow, both
// Slurm's own, with or without this plugin:
//
//   - a job whose batch script ends within its grace time is requeued and runs its script
//     again from the top (22.05 ended it as TIMEOUT);
//   - a job requeued at the end of its grace time (preempt.c, slurm_job_preempt ->
//     job_requeue) keeps the flag, as neither _job_requeue_op nor batch_requeue_fini clears
//     it: the run after that ends, restored and whole, and is requeued once more, and the
//     third run starts the script from the top.
//
// The tests accept the second one only when slurmctld's log shows exactly it: one requeue
// at the end of the grace time, then one at the end of a run, and no slurmd error (the other
// way a completing batch job is requeued).

// graceRequeues counts, in slurmctld's log, how job id was requeued around a preemption.
type graceRequeues struct {
	preempted   int  // "preempted JobId=N has been requeued to reclaim resources for ..."
	atEnd       int  // "_job_complete: requeue JobId=N per user/system request"
	slurmdError bool // "error: slurmd error running JobId=N on ..." (drains the node, may requeue)
}

func parseGraceRequeues(log, id string) graceRequeues {
	var g graceRequeues
	q := regexp.QuoteMeta(id)
	g.preempted = len(regexp.MustCompile(`(?m)\] preempted JobId=`+q+` has been requeued to reclaim resources`).FindAllString(log, -1))
	g.atEnd = len(regexp.MustCompile(`(?m)\] _job_complete: requeue JobId=`+q+` per user/system request$`).FindAllString(log, -1))
	g.slurmdError = regexp.MustCompile(`(?im)slurmd error running JobId=` + q + ` on `).MatchString(log)
	return g
}

// ctldLog returns the text of slurmctld's log (SlurmctldLogFile of the cluster's slurm.conf).
func (c *cluster) ctldLog(t *testing.T) string {
	t.Helper()
	conf, err := os.ReadFile(c.conf)
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^SlurmctldLogFile=(\S+)`).FindSubmatch(conf)
	require.NotNil(t, m, "%s names no SlurmctldLogFile", c.conf)
	b, err := os.ReadFile(string(m[1]))
	require.NoError(t, err)
	return string(b)
}

// keepsGraceFlag says whether the cluster's Slurm is 24.05 or later (see above).
func (c *cluster) keepsGraceFlag(t *testing.T) bool {
	t.Helper()
	return !c.slurmAtMost(t, 23, 11)
}

// requeuedAgainAfterGrace says whether Slurm requeued job id, preempted once at the end of
// its grace time, once more when the run after that ended (the second behaviour above), and
// logs it. restarts is the job's restart count.
func (c *cluster) requeuedAgainAfterGrace(t *testing.T, id string, restarts int) bool {
	t.Helper()
	if restarts != 2 || !c.keepsGraceFlag(t) {
		return false
	}
	g := parseGraceRequeues(c.ctldLog(t), id)
	if g.preempted != 1 || g.atEnd != 1 || g.slurmdError {
		return false
	}
	t.Logf("Slurm %d.%d requeued job %s once more when its run after the preemption ended (GRACE_PREEMPT kept; docs/admin.md)",
		c.slurmMajor, c.slurmMinor, id)
	return true
}

// countRuns splits the counter's output (counts) into its runs from the top: a new run
// begins at each 1.
func countRuns(got []int) [][]int {
	var runs [][]int
	for _, v := range got {
		if v == 1 || len(runs) == 0 {
			runs = append(runs, nil)
		}
		runs[len(runs)-1] = append(runs[len(runs)-1], v)
	}
	return runs
}

// wholeCount says why run is not a whole count to n, or "": every value 1..n, ending at n
// (a restore may replay the few counts taken after the checkpoint it restores).
func wholeCount(run []int, n int) string {
	seen := map[int]bool{}
	for _, v := range run {
		seen[v] = true
	}
	for v := 1; v <= n; v++ {
		if !seen[v] {
			return fmt.Sprintf("no count %d", v)
		}
	}
	if len(run) == 0 || run[len(run)-1] != n {
		return fmt.Sprintf("does not end at %d", n)
	}
	return ""
}

// lastLines returns at most n last lines of s, for messages.
func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
