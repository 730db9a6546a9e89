/*
 * proto.h: names shared by the C plugin and the Go executables.
 *
 * This is protocol version 1 between the plugin (in slurmstepd) and the agent and the task
 * launcher. The Go side keeps the same names in proto/ (proto/names.go); a Go test reads this
 * file and fails if the two ever differ.
 */
#ifndef SDMTCP_PROTO_H
#define SDMTCP_PROTO_H

/* First line the agent writes on its ready pipe (fd 3), then key=value lines, then "end". */
#define SDMTCP_PROTO_READY "sdmtcp/1 ready"
#define SDMTCP_PROTO_ERROR "sdmtcp/1 error"
#define SDMTCP_PROTO_END "end"
/* The longest message, in bytes, the plugin reads; the agent cuts long values to fit. */
#define SDMTCP_PROTO_MAX 65536
/* The agent's ready pipe: the agent keeps it open until it exits, so EOF means "agent gone". */
#define SDMTCP_AGENT_READY_FD 3

/* Each key=value of the ready message becomes SDMTCP_ENV_PREFIX + KEY (upper case) in the
 * job's environment, e.g. coord_port=4242 -> SLURM_DMTCP_COORD_PORT=4242. */
#define SDMTCP_ENV_PREFIX "SLURM_DMTCP_"
/* Set by the plugin for every task it runs under DMTCP. */
#define SDMTCP_ENV_ARGV0 "SLURM_DMTCP_ARGV0"   /* the task's own argv[0] */
#define SDMTCP_ENV_PREFIX_DIR "SLURM_DMTCP_DMTCP_PREFIX" /* dmtcp_prefix= of plugstack.conf */
#define SDMTCP_ENV_ERROR "SLURM_DMTCP_ERROR"   /* why the task cannot run under DMTCP */
#define SDMTCP_ENV_COORD_HOST "SLURM_DMTCP_COORD_HOST"
#define SDMTCP_ENV_COORD_PORT "SLURM_DMTCP_COORD_PORT"
#define SDMTCP_ENV_JOB_ID "SLURM_DMTCP_JOB_ID" /* the job that set the variables */

#endif
