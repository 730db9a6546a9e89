package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/agent/generations"
	"github.com/slurm-dmtcp/slurm-dmtcp/coordinator"
	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// retryCoord is a coordinator whose restored computation runs until the agent kills it.
type retryCoord struct {
	*fakeCoord
	mu    sync.Mutex
	peers int
}

func (r *retryCoord) Status(context.Context) (coordinator.Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return coordinator.Status{NumPeers: r.peers, Running: true}, nil
}
func (r *retryCoord) Kill(ctx context.Context) error {
	r.mu.Lock()
	r.peers = 0
	r.mu.Unlock()
	return r.fakeCoord.Kill(ctx)
}
func (r *retryCoord) restored() { r.mu.Lock(); r.peers = 1; r.mu.Unlock() }

// fakeLauncher plays the task launcher of local task 0: its restored program dies with
// code (fails times), and it restores whatever the agent answers. It returns the generations
// it was told to restore and the agent's last answer.
func fakeLauncher(t *testing.T, runDir string, coord *retryCoord, fails, code int) (func() ([]int, proto.RestoreReply), context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var told []int
	var last proto.RestoreReply
	go func() {
		attempt, died := 1, 0 // died: the last attempt whose program died
		for ; ctx.Err() == nil; time.Sleep(5 * time.Millisecond) {
			if b, err := os.ReadFile(filepath.Join(runDir, proto.RestoreReplyFile)); err == nil {
				r, err := proto.ParseRestoreReply(b)
				require.NoError(t, err)
				mu.Lock()
				last = r
				if r.Attempt > attempt && r.Restore != "" {
					attempt = r.Attempt
					told = append(told, generationNumber(r.Restore))
					coord.restored()
				}
				mu.Unlock()
			}
			if died == attempt || fails == 0 {
				continue
			}
			time.Sleep(20 * time.Millisecond) // it runs a little, then dies
			died, fails = attempt, fails-1
			f := proto.RestoreFailure{Attempt: attempt, Code: code}
			require.NoError(t, os.WriteFile(filepath.Join(runDir, proto.RestoreFailedFile(0)), f.Marshal(), 0o600))
		}
	}()
	return func() ([]int, proto.RestoreReply) {
		mu.Lock()
		defer mu.Unlock()
		return append([]int(nil), told...), last
	}, cancel
}

// A restored program that dies abnormally soon after the restore is restored again: the
// same generation once, then older verified ones, one line each in the job's error output,
// at most restoreAttempts in all; then the step ends without being marked finished.
func TestRestoreRetried(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fails     int // how many attempts die
		damage    int // generation made damaged beforehand; 0 none
		wantTold  []int
		wantOver  bool
		wantLines []string
	}{
		{"the second attempt runs", 1, 0, []int{3}, true,
			[]string{"restore of generation 3 failed (task 0 was killed by signal 11 (segmentation fault, exit 139)): restoring generation 3, attempt 2 of 4"}},
		{"every attempt dies", 10, 0, []int{3, 2, 1}, false,
			[]string{"restoring generation 3, attempt 2 of 4", "restore of generation 3 failed", "restoring generation 2, attempt 3 of 4",
				"restoring generation 1, attempt 4 of 4", "restore of generation 1 failed (task 0 was killed by signal 11 (segmentation fault, exit 139)) after 4 attempts"}},
		{"a damaged older generation is passed over", 10, 2, []int{3, 1}, false,
			[]string{"restoring generation 1, attempt 3 of 4", "after 3 attempts"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, fake, progress := newTestAgent(t, Config{JobID: "7", Step: "batch", Tasks: 1}, nil)
			require.NoError(t, a.Store.Close())
			store, err := generations.Open(a.Layout.StepDir, generations.Options{Keep: 3})
			require.NoError(t, err)
			a.Store = store
			for i := 0; i < 3; i++ {
				_, err = a.Checkpoint(context.Background(), "periodic")
				require.NoError(t, err)
			}
			gens, err := a.Store.List()
			require.NoError(t, err)
			require.Len(t, gens, 3)
			if tc.damage > 0 {
				images, _ := filepath.Glob(filepath.Join(gens[tc.damage-1].Path, "ckpt_*"))
				require.NoError(t, os.WriteFile(images[0], []byte("damaged"), 0o600))
			}
			coord := &retryCoord{fakeCoord: fake, peers: 1}
			a.Coord, a.RestoreSettle = coord, 300*time.Millisecond
			seen, stop := fakeLauncher(t, a.Layout.RunDir, coord, tc.fails, 139)
			defer stop()
			done := make(chan struct{})
			go func() { a.watchRestore(context.Background(), gens[2].Path, 5*time.Second); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("watchRestore did not return")
			}
			time.Sleep(50 * time.Millisecond)
			told, last := seen()
			assert.Equal(t, tc.wantTold, told)
			assert.Equal(t, tc.wantOver, last.Over, "last answer %+v", last)
			if !tc.wantOver {
				assert.NotEmpty(t, last.GiveUp)
			}
			for _, l := range tc.wantLines {
				assert.Contains(t, progress.String(), l)
			}
			lines := len(tc.wantTold) // one per attempt after the first, and one when it gives up
			if !tc.wantOver {
				lines++
			}
			assert.Equal(t, lines, strings.Count(progress.String(), "slurm-dmtcp: restore of generation"), progress.String())
		})
	}
}

func TestGenerationNumber(t *testing.T) {
	assert.Equal(t, 12, generationNumber("/h/.slurm-dmtcp/7/batch/gen-000012"))
	assert.Equal(t, 0, generationNumber("/h/.slurm-dmtcp/7/batch/.current"))
}

// After the ready message the agent verifies the generation restorePlan chose without
// hashing it: a damaged one falls back to an older one that verifies, none left starts the
// step from the top, or fails it when the site says so; the launchers hear it in the reply.
func TestVerifyRestoreAfterReady(t *testing.T) {
	for _, tc := range []struct {
		name     string
		damage   []int // generations whose image changes, size kept
		failPol  bool
		want     proto.RestoreReply // Restore: a generation number in want.Attempt's place
		wantGen  int
		wantLine string
	}{
		{"the newest verifies", nil, false, proto.RestoreReply{Attempt: 1}, 3, ""},
		{"the newest is damaged", []int{3}, false, proto.RestoreReply{Attempt: 1}, 2, "generation 3 is damaged"},
		{"all are damaged", []int{1, 2, 3}, false, proto.RestoreReply{Attempt: 1, Fresh: true}, 0, "no verified checkpoint generation; starting from the top"},
		{"all are damaged, the site fails such jobs", []int{1, 2, 3}, true, proto.RestoreReply{Attempt: 1}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _, progress := newTestAgent(t, Config{JobID: "7", Step: "batch", Tasks: 1, RestartCount: 1, FailWithoutCheckpoint: tc.failPol}, nil)
			require.NoError(t, a.Store.Close())
			store, err := generations.Open(a.Layout.StepDir, generations.Options{Keep: 3})
			require.NoError(t, err)
			a.Store = store
			for i := 0; i < 3; i++ {
				_, err = a.Checkpoint(context.Background(), "periodic")
				require.NoError(t, err)
			}
			gens, err := a.Store.List()
			require.NoError(t, err)
			for _, n := range tc.damage {
				images, _ := filepath.Glob(filepath.Join(gens[n-1].Path, "ckpt_*"))
				require.NoError(t, os.WriteFile(images[0], make([]byte, 4096), 0o600))
			}
			got := a.verifyRestore(gens[2].Path)
			b, err := os.ReadFile(filepath.Join(a.Layout.RunDir, proto.RestoreReplyFile))
			require.NoError(t, err)
			reply, err := proto.ParseRestoreReply(b)
			require.NoError(t, err)
			if tc.wantGen > 0 {
				assert.Equal(t, gens[tc.wantGen-1].Path, got)
				tc.want.Restore = gens[tc.wantGen-1].Path
			} else {
				assert.Empty(t, got)
			}
			if tc.failPol {
				assert.Contains(t, reply.GiveUp, "on_no_checkpoint=fail")
				reply.GiveUp = ""
			}
			assert.Equal(t, tc.want, reply)
			if tc.wantLine != "" {
				assert.Contains(t, progress.String(), tc.wantLine)
			}
		})
	}
}
