package agent

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// JobRestarts asks slurmctld how many times the job was requeued (scontrol's Restarts=).
// slurmstepd does not hand the batch step its restart count before the script's environment
// is built, so the agent asks Slurm itself.
func JobRestarts(ctx context.Context, jobID string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "scontrol", "show", "job", "-o", jobID).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("scontrol show job %s: %w: %s", jobID, err, strings.TrimSpace(string(out)))
	}
	return parseRestarts(string(out))
}

func parseRestarts(out string) (int, error) {
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, "Restarts="); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("scontrol: Restarts=%q is not a count", v)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("scontrol: no Restarts= field in %q", firstWords(out, 8))
}

func firstWords(s string, n int) string {
	f := strings.Fields(s)
	if len(f) > n {
		f = f[:n]
	}
	return strings.Join(f, " ")
}
