package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/atomicfile"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// finishedFile marks, in the step's folder, that the step's tasks ended by themselves (not
// stopped by Slurm). It holds the newest generation number at that time: a later run of the
// job starts the step from the top and never restores those older generations.
const finishedFile = "finished"

// markFinished records that the step ended by itself: written whole (temporary file,
// fsync, rename) or not at all.
func (a *Agent) markFinished() {
	newest := 0
	if gens, err := a.Store.List(); err == nil && len(gens) > 0 {
		newest = gens[len(gens)-1].Number
	}
	body := fmt.Sprintf("generation=%d\ntime=%s\n", newest, time.Now().UTC().Format(time.RFC3339))
	if err := atomicfile.Write(a.Layout.StepDir, finishedFile, []byte(body), true); err != nil {
		a.Log.WithError(err).Warn("could not record that the step finished")
	}
}

// finishedAt returns the newest generation number when the step last finished by itself,
// or -1 if it never did. A marker that is not exactly what markFinished writes (empty, cut
// short, edited) is not taken for a finish: -1 and why.
func finishedAt(stepDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(stepDir, finishedFile))
	if errors.Is(err, fs.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return -1, err
	}
	var gen, at string
	lines := strings.Split(string(b), "\n")
	if len(lines) != 3 || lines[2] != "" {
		return -1, fmt.Errorf("%s: want the two lines generation=N and time=T, have %q", filepath.Join(stepDir, finishedFile), b)
	}
	gen, okg := strings.CutPrefix(lines[0], "generation=")
	at, okt := strings.CutPrefix(lines[1], "time=")
	n, gerr := strconv.Atoi(gen)
	_, terr := time.Parse(time.RFC3339, at)
	if !okg || !okt || gerr != nil || n < 0 || terr != nil {
		return -1, fmt.Errorf("%s: want generation=N and time=T (RFC 3339), have %q", filepath.Join(stepDir, finishedFile), b)
	}
	return n, nil
}

// tasksEnded says why the tasks of this node did not all end by themselves ("" when they
// did): each task launcher records a program that ended by itself (proto.TaskExitedFile); a
// task with no record was killed, or its launcher was.
func tasksEnded(runDir string, tasks int) string {
	var missing []string
	for id := 0; id < tasks; id++ {
		b, err := os.ReadFile(filepath.Join(runDir, proto.TaskExitedFile(id)))
		if err == nil {
			if _, err = strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				continue
			}
		}
		missing = append(missing, strconv.Itoa(id))
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("%d of the %d tasks of this node (local id %s) did not end by themselves (killed by a signal, "+
		"their launcher killed, or DMTCP failed)", len(missing), tasks, strings.Join(missing, ", "))
}

// nodeEnded is what a member writes into proto.NodeEndedFile: its run of the step (the
// leader's run id, from coordinator.addr) and why its tasks did not all end by themselves
// ("" when they did).
func nodeEnded(run, why string) []byte {
	return []byte(fmt.Sprintf("run=%s\nunfinished=%s\n", run, oneLine(why)))
}

// othersEnded waits, at most max, until every other node of the step has said for this run
// how its tasks ended, and says why the step is not finished ("" when every node's tasks
// ended by themselves).
func othersEnded(ctx context.Context, stepDir, run string, nodes int, max time.Duration) string {
	ctx, cancel := context.WithTimeout(ctx, max)
	defer cancel()
	for {
		why, waiting := "", false
		for k := 1; k < nodes && why == ""; k++ {
			b, err := os.ReadFile(filepath.Join(stepDir, proto.NodeEndedFile(k)))
			if err != nil || !bytes.HasPrefix(b, []byte("run="+run+"\n")) {
				waiting = true
				why = fmt.Sprintf("node %d of the step did not say how its tasks ended", k)
				continue
			}
			if v, ok := strings.CutPrefix(string(b[len("run="+run+"\n"):]), "unfinished="); !ok {
				why = fmt.Sprintf("node %d of the step: unreadable %s", k, proto.NodeEndedFile(k))
			} else if v = strings.TrimSpace(v); v != "" {
				why = fmt.Sprintf("node %d of the step: %s", k, v)
			}
		}
		if !waiting {
			return why
		}
		select {
		case <-ctx.Done():
			return why
		case <-time.After(20 * time.Millisecond):
		}
	}
}
