/*
 * local.c: srun, sbatch and salloc. Checks the user's request against site policy before
 * anything is submitted; a refusal prints one line and the command exits non-zero.
 */
#include <unistd.h>

#include <slurm/spank.h>

#include "sdmtcp.h"
#include "stepd.h"

int sdmtcp_local_post_opt(const struct sdmtcp_config *c, const struct sdmtcp_request *r)
{
	char err[SDMTCP_ERRLEN];
	struct sdmtcp_job j;

	if (sdmtcp_resolve(c, r, &j, err, sizeof(err)) < 0) {
		slurm_error("dmtcp: %s", err);
		return -1;
	}
	if (j.on && r->dmtcp == 1 && getuid() == 0) {
		slurm_error("dmtcp: --dmtcp: jobs of root are never run under DMTCP (the agent "
			    "never runs as root); submit as a regular user");
		return -1;
	}
	if (j.on)
		slurm_verbose("dmtcp: the job runs under DMTCP: periodic checkpoints every %lds "
			      "(0 = none), %lds before the time limit, %ld run(s) in all%s",
			      j.interval, j.lead, j.runs, j.total ? " or until its total run time" : "");
	return 0;
}
