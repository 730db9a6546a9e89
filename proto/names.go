package proto

import "strings"

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
)

// EnvName is the variable through which the plugin hands a ready-message key to the tasks.
func EnvName(key string) string { return EnvPrefix + strings.ToUpper(key) }

// TaskPidFile, in the step's runtime folder, holds the pid of the step's first task (written
// by the task launcher), so the agent can write progress lines to the job's error output.
const TaskPidFile = "task-0.pid"

// TaskStderrFile, beside it, holds the path of that task's error file when it is a regular file.
const TaskStderrFile = "task-0.stderr"

// TaskKilledFile, beside it, is written by a task launcher whose program was killed by a
// signal (exit code above 128) when the agent was not stopping the step: the step did not
// finish by itself, and a later run of the job restores its newest generation.
const TaskKilledFile = "task-killed"

// StoppingFile appears in the step's runtime folder when the agent starts a checkpoint that
// ends the computation (Slurm is stopping the step); StoppedFile once that generation is
// committed or the attempt has failed. The task launcher waits from its child's exit until
// StoppedFile exists (bounded), so that Slurm does not end the step, and kill the agent,
// half-way through a commit.
const (
	StoppingFile = "stopping"
	StoppedFile  = "stopped"
)

// CoordFailedFile, in the step's runtime folder, says why the step's coordinator never ran
// (one line): the task launcher prints it when dmtcp_launch could not reach the coordinator.
const CoordFailedFile = "coordinator.failed"

// CoordAddrFile, in the step's checkpoint folder (shared by the nodes), is where the agent of
// node 0 of a step across nodes tells the agents of the other nodes where this run's
// coordinator is (written as a temporary file, then renamed).
const CoordAddrFile = "coordinator.addr"
