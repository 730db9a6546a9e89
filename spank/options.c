/*
 * options.c: the user's options, --dmtcp[=on|off] and --dmtcp-interval=DURATION.
 *
 * Callbacks run in srun/sbatch/salloc (remote=0) as soon as an option is parsed, from the
 * command line, an #SBATCH line or a SLURM_SPANK_* variable; a syntax error there stops the
 * submission. In slurmstepd (remote=1) they run before slurm_spank_init, so they only store.
 * Policy checks need plugstack.conf and happen in slurm_spank_init_post_opt (local.c).
 */
#include <stdio.h>
#include <string.h>

#include <slurm/spank.h>

#include "sdmtcp.h"

struct sdmtcp_request sdmtcp_req = { -1, -1 };

int sdmtcp_option_dmtcp(struct sdmtcp_request *r, const char *arg, char *err, size_t errlen)
{
	int on;

	if (!arg) { /* plain --dmtcp */
		r->dmtcp = 1;
		return 0;
	}
	if (sdmtcp_parse_bool(arg, &on) < 0) {
		snprintf(err, errlen,
			 "--dmtcp=%s: expected on or off (also yes/no, true/false, 1/0), or plain --dmtcp",
			 arg);
		return -1;
	}
	r->dmtcp = on;
	return 0;
}

int sdmtcp_option_interval(struct sdmtcp_request *r, const char *arg, char *err, size_t errlen)
{
	char sub[SDMTCP_ERRLEN];
	long v;

	if (sdmtcp_parse_duration(arg ? arg : "", &v, sub, sizeof(sub)) < 0) {
		snprintf(err, errlen, "--dmtcp-interval=%.200s: %.1500s; 0 turns periodic checkpoints off",
			 arg ? arg : "", sub);
		return -1;
	}
	r->interval = v;
	return 0;
}

static int cb_dmtcp(int val, const char *optarg, int remote)
{
	char err[SDMTCP_ERRLEN];
	(void)val;
	/* A plain --dmtcp comes back as "" in slurmstepd and from an empty
	 * SLURM_SPANK__SLURM_SPANK_OPTION_dmtcp_dmtcp=, and as "(null)" in an srun that
	 * inherits that variable from a batch job. */
	if (optarg && (!*optarg || !strcmp(optarg, "(null)")))
		optarg = NULL;
	if (sdmtcp_option_dmtcp(&sdmtcp_req, optarg, err, sizeof(err)) < 0) {
		if (!remote)
			slurm_error("dmtcp: %s", err);
		return -1;
	}
	return 0;
}

static int cb_interval(int val, const char *optarg, int remote)
{
	char err[SDMTCP_ERRLEN];
	(void)val;
	if (sdmtcp_option_interval(&sdmtcp_req, optarg, err, sizeof(err)) < 0) {
		if (!remote)
			slurm_error("dmtcp: %s", err);
		return -1;
	}
	return 0;
}

static struct spank_option opt_table[] = {
	{ "dmtcp", "[on|off]",
	  "Run the job's tasks under DMTCP checkpoint/restart (slurm-dmtcp). "
	  "Default from the site's policy.",
	  2, 0, cb_dmtcp },
	{ "dmtcp-interval", "DURATION",
	  "Checkpoint every DURATION (900, 90s, 30m, 1h30m, 2d); 0 = only on demand "
	  "and before the job is stopped.",
	  1, 0, cb_interval },
	SPANK_OPTIONS_TABLE_END
};

int sdmtcp_options_register(void *sp)
{
	for (struct spank_option *o = opt_table; o->name; o++)
		if (spank_option_register((spank_t)sp, o) != ESPANK_SUCCESS) {
			slurm_error("dmtcp: cannot register option --%s", o->name);
			return -1;
		}
	return 0;
}

int sdmtcp_resolve(const struct sdmtcp_config *c, const struct sdmtcp_request *r, int *on,
		   long *interval, char *err, size_t errlen)
{
	/* --dmtcp-interval alone implies --dmtcp. */
	*on = r->dmtcp >= 0 ? r->dmtcp : (r->interval >= 0 ? 1 : c->default_on);
	*interval = r->interval < 0 ? c->default_interval : r->interval;

	if (r->dmtcp == 0 && c->default_on && !c->allow_opt_out) {
		snprintf(err, errlen,
			 "--dmtcp=off: this cluster runs every job under DMTCP and does not allow "
			 "opting out (plugstack.conf allow_opt_out=no)");
		return -1;
	}
	if (r->interval >= 0 && !*on && r->dmtcp == 0) {
		snprintf(err, errlen, "--dmtcp-interval needs --dmtcp, but --dmtcp=off was given");
		return -1;
	}
	if (*on && *interval > 0 && *interval < c->min_interval) {
		snprintf(err, errlen,
			 "--dmtcp-interval=%lds is shorter than this cluster's minimum of %lds "
			 "(plugstack.conf min_interval); use 0 or at least %lds",
			 *interval, c->min_interval, c->min_interval);
		return -1;
	}
	return 0;
}
