package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/generations"
	"github.com/slurm-dmtcp/slurm-dmtcp/coordinator"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto/procstat"
)

// Space is what a checkpoint needs and what the checkpoint folder has, in bytes: Need is
// the memory of the step's processes, Last the size of the newest generation (0 with none).
// DMTCP's images hold more than the resident memory (whole file-backed and unread pages),
// so the generation before is the better guess once there is one.
type Space struct {
	Need, Last, Free int64
}

// SpaceCheck measures Space before a checkpoint: nil skips the check.
type SpaceCheck func() (Space, error)

// StepSpace measures the memory of the step's processes (every process below slurmstepd,
// the agent's parent, except the agent's own subtree) and the size of the newest generation
// (last) against the free space of dir. DMTCP ends the application when it cannot write an
// image, so a checkpoint that cannot fit must not start.
func StepSpace(proc string, stepd, self int, dir string, last func() int64) SpaceCheck {
	return func() (Space, error) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			return Space{}, fmt.Errorf("free space of %s: %w", dir, err)
		}
		need, err := treeRSS(proc, stepd, self)
		if err != nil {
			return Space{}, err
		}
		return Space{Need: need, Last: last(), Free: int64(st.Bavail) * st.Bsize}, nil
	}
}

// treeRSS sums the resident memory of every process below root, leaving out skip and the
// processes below it.
func treeRSS(proc string, root, skip int) (int64, error) {
	entries, err := os.ReadDir(proc)
	if err != nil {
		return 0, err
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := procstat.Read(proc, pid)
		if err != nil {
			continue // gone, or not ours to read
		}
		children[st.PPid] = append(children[st.PPid], pid)
	}
	page := int64(os.Getpagesize())
	var total int64
	queue := append([]int(nil), children[root]...)
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if pid == skip {
			continue
		}
		queue = append(queue, children[pid]...)
		b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "statm"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			continue
		}
		rss, _ := strconv.ParseInt(f[1], 10, 64)
		total += rss * page
	}
	return total, nil
}

// fits says whether a checkpoint of s can be written, with a tenth to spare: uncompressed
// images take the processes' memory or the newest generation's size, whichever is more;
// compressed ones about the newest generation's size (before the first, only an empty file
// system stops those).
func (s Space) fits(compress bool) bool {
	if compress && s.Last == 0 {
		return s.Free > 0
	}
	need := s.need(compress)
	return s.Free >= need+need/10
}

// need is the estimate fits measures against, for messages.
func (s Space) need(compress bool) int64 {
	if compress {
		return s.Last
	}
	return max(s.Need, s.Last)
}

// newestSize is the size of the store's newest generation (0 with none or unreadable).
func newestSize(list func() ([]generations.Generation, error)) func() int64 {
	return func() int64 {
		gens, err := list()
		if err != nil || len(gens) == 0 {
			return 0
		}
		return gens[len(gens)-1].Size
	}
}

// clearDir removes what a failed checkpoint left in dir (partial *.temp images).
func clearDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// checkpointImages is how many images the checkpoint that just ended wrote: the images the
// coordinator's restart script for it names (given_ckpt_files=), or peers when there is no
// script. Processes that start or end while a checkpoint is taken make peers, counted
// before it, a guess.
func checkpointImages(ckptDir string, peers int) int {
	newest, _ := coordinator.NewestRestartScript(ckptDir)
	if newest == "" {
		return peers
	}
	b, err := os.ReadFile(newest)
	if err != nil {
		return peers
	}
	if n := len(restartScriptImages(string(b))); n > 0 {
		return n
	}
	return peers
}
