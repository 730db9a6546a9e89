// Package proto holds the names and formats shared by the processes of slurm-dmtcp: the C
// plugin in slurmstepd, the agent, and the task launcher.
//
// The plugin starts the agent with a pipe on fd 3 (ReadyFD). The agent writes one message and
// keeps the pipe open until it exits, so the plugin sees EOF once the agent is gone:
//
//	sdmtcp/1 ready          or   sdmtcp/1 error
//	coord_host=node7             message=dmtcp_coordinator not found (looked in ...)
//	coord_port=40581             end
//	...
//	end
//
// Keys are lower case letters and underscores; values run to the end of the line and never
// hold a newline. The plugin exports each key as SLURM_DMTCP_<KEY> to the job's tasks. The
// C side defines the same names in spank/proto.h; a test keeps the two in step.
package proto
