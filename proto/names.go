package proto

import (
	"fmt"
	"strconv"
	"strings"
)

// Protocol version 1 of the ready message (see the package documentation).
const (
	ReadyHeader = "sdmtcp/1 ready"
	ErrorHeader = "sdmtcp/1 error"
	EndLine     = "end"
	ReadyFD     = 3
)

// Environment variables the plugin sets for the tasks it runs under DMTCP.
const (
	EnvPrefix      = "SLURM_DMTCP_"
	EnvArgv0       = "SLURM_DMTCP_ARGV0"
	EnvDMTCPPrefix = "SLURM_DMTCP_DMTCP_PREFIX"
	EnvError       = "SLURM_DMTCP_ERROR"
	EnvCoordHost   = "SLURM_DMTCP_COORD_HOST"
	EnvCoordPort   = "SLURM_DMTCP_COORD_PORT"
)

// Keys of the ready message. Each reaches the tasks as EnvPrefix + upper-case key.
const (
	KeyCoordHost = "coord_host"
	KeyCoordPort = "coord_port"
	KeyCkptDir   = "ckptdir"
	KeyStepDir   = "stepdir"
	KeyRunDir    = "rundir"
	KeyTmpDir    = "tmpdir"
	KeyMessage   = "message"
	// KeyRestore names the generation folder the tasks restore instead of starting.
	KeyRestore = "restore"
	// KeyRestoreNote is what the task launcher prints to the job's error output on a restart.
	KeyRestoreNote = "restore_note"
	// KeyCompress is "on" or "off": whether DMTCP gzips the images (plugstack.conf compress=).
	KeyCompress = "compress"
	// KeyControlSocket is the agent's control socket (proto/control): SLURM_DMTCP_CONTROL_SOCKET.
	KeyControlSocket = "control_socket"
	// KeyPerRank is "1" for a step of several tasks: each task writes its images into
	// <ckptdir>/rank-<SLURM_PROCID> and restores from <restore>/rank-<SLURM_PROCID>.
	KeyPerRank = "per_rank"
	// KeyReportExit is "1" when the step's task launchers report how their program ended
	// (TaskExitedFile). The launcher removes it from its program's environment, so that the
	// tasks of a step started from inside this one never report into this step's folder.
	KeyReportExit = "report_exit"
	// KeyEnded is set when the step's tasks ended by themselves in the run before, as
	// Slurm stopped that run: the exit statuses of the tasks by local id, space-separated.
	// The task launchers do not run their program again; each ends with its status.
	KeyEnded = "ended"
)

// EnvName is the variable through which the plugin hands a ready-message key to the tasks.
func EnvName(key string) string { return EnvPrefix + strings.ToUpper(key) }

// TaskPidFile, in the step's runtime folder, holds the pid of the step's first task (written
// by the task launcher), so the agent can write progress lines to the job's error output.
const TaskPidFile = "task-0.pid"

// TaskStderrFile, beside it, holds the path of that task's error file when it is a regular file.
const TaskStderrFile = "task-0.stderr"

// TaskExitedFile is written, in the step's runtime folder, by the task launcher of the
// task with that local id (SLURM_LOCALID) once its program has ended by itself: an exit
// status of 0 to 128 that is not DMTCP's own failure code, and not the agent's stop. It holds
// the exit status. A step is finished only when every task of it wrote one: a task killed by
// a signal, a launcher killed with it (Slurm's SIGKILL, the OOM killer) or a DMTCP failure
// leaves none, and a later run of the job restores the step's newest generation.
func TaskExitedFile(localID int) string { return fmt.Sprintf("task-exited.%d", localID) }

// NodeEndedFile, in the step's checkpoint folder (shared by the nodes), is written by the
// agent of node nodeID > 0 of a step across nodes when that node's tasks have ended: which run
// it belongs to and whether every task of that node ended by itself. Node 0 marks the step
// finished only when every other node says so.
func NodeEndedFile(nodeID int) string { return fmt.Sprintf("node-%d.ended", nodeID) }

// StoppingFile appears in the step's runtime folder when the agent starts a checkpoint that
// ends the computation (Slurm is stopping the step); StoppedFile once that generation is
// committed or the attempt has failed. The task launcher waits from its child's exit until
// StoppedFile exists (bounded), so that Slurm does not end the step, and kill the agent,
// half-way through a commit.
//
// StopFoundNothingFile appears before StoppedFile when that checkpoint found no process of
// the computation left: the programs had ended by themselves as Slurm stopped the step, and
// each task launcher reports its program's own end (TaskExitedFile) as on any other.
// StopSkippedFile appears instead when the agent took no checkpoint and left the programs
// running (the checkpoint folder unusable or full): a program that ends before Slurm kills
// it ended by itself, and is reported so too.
const (
	StoppingFile         = "stopping"
	StoppedFile          = "stopped"
	StopFoundNothingFile = "stopped-nothing"
	StopSkippedFile      = "stopped-skipped"
)

// ForkLockFile, in the step's runtime folder, keeps the start of a checkpoint apart from
// processes that are joining the computation: the agent holds it exclusively (flock) from
// just before it asks for a checkpoint until the computation runs again; the tasks' DMTCP
// plugin holds it shared around every fork (dmtcpplugin/forklock.c), and the task launcher
// from before dmtcp_launch until the program runs under DMTCP (agent/launch/join.go).
const ForkLockFile = "fork.lock"

// CoordFailedFile, in the step's runtime folder, says why the step's coordinator never ran
// (one line): the task launcher prints it when dmtcp_launch could not reach the coordinator.
const CoordFailedFile = "coordinator.failed"

// CoordAddrFile, in the step's checkpoint folder (shared by the nodes), is where the agent of
// node 0 of a step across nodes tells the agents of the other nodes where this run's
// coordinator is (written as a temporary file, then renamed).
const CoordAddrFile = "coordinator.addr"

// FormatExits writes exit statuses, by local id, as KeyEnded and the finished marker hold
// them: space-separated.
func FormatExits(exits []int) string {
	codes := make([]string, len(exits))
	for i, c := range exits {
		codes[i] = strconv.Itoa(c)
	}
	return strings.Join(codes, " ")
}

// ParseExits reads what FormatExits writes: one or more exit statuses of 0 to 128.
func ParseExits(s string) ([]int, error) {
	var exits []int
	for _, c := range strings.Fields(s) {
		code, err := strconv.Atoi(c)
		if err != nil || code < 0 || code > 128 {
			return nil, fmt.Errorf("%q is not an exit status (0 to 128)", c)
		}
		exits = append(exits, code)
	}
	if len(exits) == 0 {
		return nil, fmt.Errorf("%q holds no exit status", s)
	}
	return exits, nil
}
