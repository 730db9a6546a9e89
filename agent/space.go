package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/slurm-dmtcp/slurm-dmtcp/coordinator"
)

// Space is what a checkpoint needs and what the checkpoint folder has, in bytes.
type Space struct {
	Need, Free int64
}

// SpaceCheck measures Space before a checkpoint: nil skips the check.
type SpaceCheck func() (Space, error)

// StepSpace measures the memory of the step's processes (every process below slurmstepd,
// the agent's parent, except the agent's own subtree) against the free space of dir. DMTCP
// ends the application when it cannot write an image, so a checkpoint that cannot fit must
// not start.
func StepSpace(proc string, stepd, self int, dir string) SpaceCheck {
	return func() (Space, error) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			return Space{}, fmt.Errorf("free space of %s: %w", dir, err)
		}
		need, err := treeRSS(proc, stepd, self)
		if err != nil {
			return Space{}, err
		}
		return Space{Need: need, Free: int64(st.Bavail) * st.Bsize}, nil
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
		b, err := os.ReadFile(filepath.Join(proc, e.Name(), "stat"))
		if err != nil {
			continue // gone, or not ours to read
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
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

// fits says whether a checkpoint of s can be written: uncompressed images are about the
// size of the processes' memory; compressed ones are usually smaller, so only an empty
// file system stops those.
func (s Space) fits(compress bool) bool {
	if compress {
		return s.Free > 0
	}
	return s.Free >= s.Need+s.Need/10
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
