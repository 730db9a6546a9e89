/*
 * spank_dmtcp.c: the SPANK entry points. Each hook only dispatches by context:
 *   srun, sbatch, salloc (local/allocator) -> local.c: validate options against site policy.
 *   slurmstepd (remote)                     -> stepd.c: agent, task command, shutdown.
 *   slurmd                                  -> one log line with the version, nothing else.
 *   prolog/epilog                           -> nothing at all.
 * No Go runs in any of these processes: the agent and the task launcher are executables.
 */
#include <string.h>

#include <slurm/spank.h>

#include "sdmtcp.h"
#include "stepd.h"

/* Built with -fvisibility=hidden: only what Slurm looks up is exported. */
#pragma GCC visibility push(default)
SPANK_PLUGIN(dmtcp, 1);

static struct sdmtcp_config config;

static int active_context(void)
{
	spank_context_t ctx = spank_context();
	return ctx == S_CTX_LOCAL || ctx == S_CTX_ALLOCATOR || ctx == S_CTX_REMOTE;
}

/* slurmd, at its start: the release in slurmd's log, nothing else. */
int slurm_spank_slurmd_init(spank_t sp, int ac, char **av)
{
	(void)sp;
	(void)ac;
	(void)av;
	slurm_info("dmtcp: slurm-dmtcp %s loaded", SDMTCP_VERSION);
	return 0;
}

int slurm_spank_init(spank_t sp, int ac, char **av)
{
	char err[SDMTCP_ERRLEN];

	if (!active_context())
		return 0;
	sdmtcp_config_defaults(&config);
	if (sdmtcp_config_parse(&config, ac, av, err, sizeof(err)) < 0) {
		slurm_error("dmtcp: %s", err);
		return -1;
	}
	return sdmtcp_options_register(sp);
}

int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
	int rc;

	(void)ac;
	(void)av;
	switch (spank_context()) {
	case S_CTX_LOCAL:
	case S_CTX_ALLOCATOR:
		return sdmtcp_local_post_opt(&config, &sdmtcp_req);
	case S_CTX_REMOTE:
		rc = sdmtcp_stepd_post_opt(sp, &config, &sdmtcp_req);
		/* In slurmd's log, for each step under DMTCP: which release ran it. */
		if (sdmtcp_stepd_on())
			slurm_info("dmtcp: slurm-dmtcp %s runs this step", SDMTCP_VERSION);
		return rc;
	default:
		return 0;
	}
}

int slurm_spank_user_init(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	return spank_context() == S_CTX_REMOTE ? sdmtcp_stepd_user_init(sp) : 0;
}

int slurm_spank_task_init(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	return spank_context() == S_CTX_REMOTE ? sdmtcp_stepd_task_init(sp) : 0;
}

int slurm_spank_task_exit(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	return spank_context() == S_CTX_REMOTE ? sdmtcp_stepd_task_exit(sp) : 0;
}

int slurm_spank_exit(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	return spank_context() == S_CTX_REMOTE ? sdmtcp_stepd_exit(sp) : 0;
}
#pragma GCC visibility pop
