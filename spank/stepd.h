/*
 * stepd.h: hooks of local.c (srun/sbatch/salloc) and stepd.c (slurmstepd).
 */
#ifndef SDMTCP_STEPD_H
#define SDMTCP_STEPD_H

#include <stdint.h>
#include <sys/types.h>

#include <slurm/spank.h>

#include "sdmtcp.h"

int sdmtcp_local_post_opt(const struct sdmtcp_config *c, const struct sdmtcp_request *r);

/* Whether this step runs under DMTCP (after sdmtcp_stepd_post_opt). */
int sdmtcp_stepd_on(void);
int sdmtcp_stepd_post_opt(spank_t sp, const struct sdmtcp_config *c,
			  const struct sdmtcp_request *r);
int sdmtcp_stepd_user_init(spank_t sp);
int sdmtcp_stepd_task_init(spank_t sp);
int sdmtcp_stepd_task_exit(spank_t sp);
int sdmtcp_stepd_exit(spank_t sp);

/* Whether the user uid (primary group gid, supplementary groups gids[0..ngids)) may execute
 * the regular file path, from its owner, group and mode (slurmstepd runs as root, for whom
 * access() says yes to any execute bit). 1 yes, 0 no (errno says why: EACCES, ENOENT...). */
int sdmtcp_executable_by(const char *path, uid_t uid, gid_t gid, const gid_t *gids, int ngids);

/* A poll() time-out for left_ms milliseconds: 0 when none is left, at most INT_MAX (a long
 * agent_timeout= must not wrap to a negative, endless wait). */
int sdmtcp_poll_ms(long left_ms);

/* Parses the agent's ready message (see proto.h). On "ready", calls set(key, value) for
 * every key=value line and returns 1; on "error" copies the message into err and returns 0;
 * returns -1 on a malformed message (err says why). */
int sdmtcp_parse_ready(char *msg, void (*set)(void *ctx, const char *key, const char *val),
		       void *ctx, char *err, size_t errlen);

/* Opens runtime_dir as root may: every folder of the path it leads to (realpath) opened from
 * / without following a link, owned by root or uid, and sticky when others may write into
 * it, so that nobody else can swap one. Returns the folder's descriptor or -1. */
int sdmtcp_open_runtime_dir(const char *runtime_dir, uid_t uid);

/* Opens the skip-th (from 0) step folder named leaf ("<job>.<step>") in uid's folders under
 * runtime_dir (slurm-dmtcp-<uid> and slurm-dmtcp-<uid>.<suffix>, which the agent makes when
 * another user planted the first) of sdmtcp_open_runtime_dir, every part opened without
 * following a symbolic link and owned by uid; anything else there is passed over. Its path
 * goes into path (when not NULL). Returns the folder's descriptor or -1. */
int sdmtcp_find_step_dir(const char *runtime_dir, uid_t uid, const char *leaf, int skip,
			 char *path, size_t len);

/* Whether port is the coordinator port that the agent of job jobid's batch step wrote on
 * this node: coordinator.port in its step folder (sdmtcp_find_step_dir, "<jobid>.batch"),
 * opened without following a symbolic link and owned by uid. 1 yes, 0 no. */
int sdmtcp_batch_coordinator_is(const char *runtime_dir, uid_t uid, uint32_t jobid,
				const char *port);

/* Removes dir and everything in it, then its parent if that is empty, as uid:gid (a child
 * process that drops root first, so no link in dir is followed as root). Waits at most
 * timeout_ms. 0 when done, -1 otherwise. */
int sdmtcp_remove_as(uid_t uid, gid_t gid, const char *dir, long timeout_ms);
/* Why the last sdmtcp_remove_as failed, for the log; and whether it failed because the
 * remover was killed by a signal. */
extern char sdmtcp_remove_why[160];
extern int sdmtcp_remove_killed;
/* Tests only: called in the parent with the remover's pid right after the fork. */
extern void (*sdmtcp_remove_forked)(pid_t child);
/* sdmtcp_remove_as, tried again (at most tries in all, 50 ms apart, doubling) while the
 * remover is killed by a signal: when srun has its tasks' exit, slurmctld ends the job and
 * slurmd has the step's container killed while slurm_spank_exit still runs, and with
 * proctrack/linuxproc that SIGKILL reaches every process below slurmstepd, the remover
 * too (seen with Slurm 24.11). Any other failure is final at once. 0 or -1. */
int sdmtcp_remove_retrying(uid_t uid, gid_t gid, const char *dir, long timeout_ms, int tries);

/* slurmpath.c: the bin/ folder beside the sbin/ of executable exe ("/opt/slurm/sbin/x" ->
 * "/opt/slurm/bin"); and that of this process (slurmstepd) when it holds scontrol. 0 or -1. */
int sdmtcp_bindir_of(const char *exe, char *out, size_t len);
int sdmtcp_slurm_bindir(char *out, size_t len);

#endif
