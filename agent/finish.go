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
// job starts the step from the top and never restores those older generations. A step
// whose tasks ended by themselves as Slurm stopped it (its stop checkpoint found no process
// left) also holds that run's restart count and the tasks' exit statuses: the next run
// does not run it again (restorePlan).
const finishedFile = "finished"

// finish is what the finished marker says.
type finish struct {
	// Generation is the newest generation when the step finished; -1: it never did.
	Generation int
	// StopRun is the restart count of the run that Slurm stopped as the step's tasks ended
	// by themselves; -1 when Slurm was not stopping it.
	StopRun int
	// Exits are the exit statuses of the tasks, by local id, when StopRun is set.
	Exits []int
}

// markFinished records that the step ended by itself: written whole (temporary file,
// fsync, rename) or not at all.
func (a *Agent) markFinished() { a.writeFinish(nil) }

// markFinishedAtStop records that the step ended by itself while Slurm was stopping it,
// with its tasks' exit statuses (by local id).
func (a *Agent) markFinishedAtStop(exits []int) { a.writeFinish(exits) }

func (a *Agent) writeFinish(stopExits []int) {
	newest := 0
	if gens, err := a.Store.List(); err == nil && len(gens) > 0 {
		newest = gens[len(gens)-1].Number
	}
	body := fmt.Sprintf("generation=%d\ntime=%s\n", newest, time.Now().UTC().Format(time.RFC3339))
	if stopExits != nil {
		body += fmt.Sprintf("stopped_run=%d\nexits=%s\n", a.Config.RestartCount, proto.FormatExits(stopExits))
	}
	if err := atomicfile.Write(a.Layout.StepDir, finishedFile, []byte(body), true); err != nil {
		a.Log.WithError(err).Warn("could not record that the step finished")
	}
}

// finishedAt returns the newest generation number when the step last finished by itself,
// or -1 if it never did. A marker that is not exactly what markFinished writes (empty, cut
// short, edited) is not taken for a finish: -1 and why.
func finishedAt(stepDir string) (int, error) {
	f, err := readFinish(stepDir)
	return f.Generation, err
}

// readFinish reads the finished marker strictly: anything but what writeFinish writes is
// no finish at all (Generation -1) and an error that says what was found.
func readFinish(stepDir string) (finish, error) {
	none := finish{Generation: -1, StopRun: -1}
	path := filepath.Join(stepDir, finishedFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return none, nil
	}
	if err != nil {
		return none, err
	}
	lines := strings.Split(string(b), "\n")
	if (len(lines) != 3 && len(lines) != 5) || lines[len(lines)-1] != "" {
		return none, fmt.Errorf("%s: want the two lines generation=N and time=T (and, for a step that ended as Slurm stopped it, stopped_run=N and exits=S...), have %q", path, b)
	}
	gen, okg := strings.CutPrefix(lines[0], "generation=")
	at, okt := strings.CutPrefix(lines[1], "time=")
	n, gerr := strconv.Atoi(gen)
	_, terr := time.Parse(time.RFC3339, at)
	if !okg || !okt || gerr != nil || n < 0 || terr != nil {
		return none, fmt.Errorf("%s: want generation=N and time=T (RFC 3339), have %q", path, b)
	}
	f := finish{Generation: n, StopRun: -1}
	if len(lines) == 3 {
		return f, nil
	}
	run, okr := strings.CutPrefix(lines[2], "stopped_run=")
	codes, oke := strings.CutPrefix(lines[3], "exits=")
	r, rerr := strconv.Atoi(run)
	bad := fmt.Errorf("%s: want stopped_run=N and exits=S... (exit statuses 0 to 128) after the time, have %q", path, b)
	if !okr || !oke || rerr != nil || r < 0 {
		return none, bad
	}
	if f.Exits, err = proto.ParseExits(codes); err != nil {
		return none, bad
	}
	f.StopRun = r
	return f, nil
}

// taskExit returns the exit status that the task launcher of local id recorded, if it did.
func taskExit(runDir string, id int) (int, bool) {
	b, err := os.ReadFile(filepath.Join(runDir, proto.TaskExitedFile(id)))
	if err != nil {
		return 0, false
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return code, err == nil
}

// taskExits returns the exit statuses that the task launchers of this node recorded, by
// local id, when every one of them did; nil when one did not.
func taskExits(runDir string, tasks int) []int {
	exits := make([]int, 0, tasks)
	for id := 0; id < tasks; id++ {
		code, ok := taskExit(runDir, id)
		if !ok {
			return nil
		}
		exits = append(exits, code)
	}
	return exits
}

// tasksEnded says why the tasks of this node did not all end by themselves ("" when they
// did): each task launcher records a program that ended by itself (proto.TaskExitedFile); a
// task with no record was killed, or its launcher was.
func tasksEnded(runDir string, tasks int) string {
	var missing []string
	for id := 0; id < tasks; id++ {
		if _, ok := taskExit(runDir, id); !ok {
			missing = append(missing, strconv.Itoa(id))
		}
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
