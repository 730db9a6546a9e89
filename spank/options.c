/*
 * options.c: the user's options: --dmtcp[=on|off], --dmtcp-interval=DURATION,
 * --dmtcp-lead=DURATION and --dmtcp-continue=N|DURATION.
 *
 * Callbacks run in srun/sbatch/salloc (remote=0) as soon as an option is parsed, from the
 * command line, an #SBATCH line or a SLURM_SPANK_* variable; a syntax error there stops the
 * submission. In slurmstepd (remote=1) they run before slurm_spank_init, so they only store.
 * Policy checks need plugstack.conf and happen in slurm_spank_init_post_opt (local.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slurm/spank.h>

#include "sdmtcp.h"

struct sdmtcp_request sdmtcp_req = SDMTCP_REQUEST_INIT;

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

int sdmtcp_option_lead(struct sdmtcp_request *r, const char *arg, char *err, size_t errlen)
{
	char sub[SDMTCP_ERRLEN];
	long v;

	if (sdmtcp_parse_duration(arg ? arg : "", &v, sub, sizeof(sub)) < 0) {
		snprintf(err, errlen,
			 "--dmtcp-lead=%.200s: %.1500s; 0 turns the checkpoint before the time limit off",
			 arg ? arg : "", sub);
		return -1;
	}
	r->lead = v;
	return 0;
}

#define CONTINUE_FORMS                                                                           \
	"expected a number of runs in all (3), a total run time with a unit (36h, 3d, 2d12h), or " \
	"off"

int sdmtcp_option_continue(struct sdmtcp_request *r, const char *arg, char *err, size_t errlen)
{
	char sub[SDMTCP_ERRLEN];
	const char *p = arg ? arg : "";
	int on;
	long v;

	if (sdmtcp_parse_bool(p, &on) == 0 && !on) {
		r->runs = 1;
		r->total = 0;
		return 0;
	}
	while (*p >= '0' && *p <= '9')
		p++;
	if (arg && *arg && !*p) { /* digits only: a number of runs */
		if (strlen(arg) > 4 || (v = strtol(arg, NULL, 10)) < 1) {
			snprintf(err, errlen, "--dmtcp-continue=%.200s: a number of runs from 1 to 9999; %s",
				 arg, CONTINUE_FORMS);
			return -1;
		}
		r->runs = v;
		r->total = 0;
		return 0;
	}
	if (sdmtcp_parse_duration(arg ? arg : "", &v, sub, sizeof(sub)) < 0 || v < 1) {
		snprintf(err, errlen, "--dmtcp-continue=%.200s: %s", arg ? arg : "", CONTINUE_FORMS);
		return -1;
	}
	r->total = v;
	r->runs = -1;
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

static int cb_lead(int val, const char *optarg, int remote)
{
	char err[SDMTCP_ERRLEN];
	(void)val;
	if (sdmtcp_option_lead(&sdmtcp_req, optarg, err, sizeof(err)) < 0) {
		if (!remote)
			slurm_error("dmtcp: %s", err);
		return -1;
	}
	return 0;
}

static int cb_continue(int val, const char *optarg, int remote)
{
	char err[SDMTCP_ERRLEN];
	(void)val;
	if (sdmtcp_option_continue(&sdmtcp_req, optarg, err, sizeof(err)) < 0) {
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
	{ "dmtcp-lead", "DURATION",
	  "Checkpoint DURATION before the job's time limit (default from the site's policy); "
	  "0 = no such checkpoint.",
	  1, 0, cb_lead },
	{ "dmtcp-continue", "N|DURATION",
	  "Go on past the time limit: checkpoint before it, requeue, resume, for N runs in all "
	  "(3) or until DURATION of run time in all (36h, 3d); off = stop at the limit.",
	  1, 0, cb_continue },
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

int sdmtcp_resolve(const struct sdmtcp_config *c, const struct sdmtcp_request *r,
		   struct sdmtcp_job *j, char *err, size_t errlen)
{
	/* Any --dmtcp-* option implies --dmtcp. */
	int asked = r->interval >= 0 || r->lead >= 0 || r->runs >= 0 || r->total >= 0;

	j->on = r->dmtcp >= 0 ? r->dmtcp : (asked ? 1 : c->default_on);
	j->interval = r->interval < 0 ? c->default_interval : r->interval;
	j->lead = r->lead < 0 ? c->lead_time : r->lead;
	j->total = r->total < 0 ? 0 : r->total;
	j->runs = r->runs >= 0 ? r->runs : (r->total > 0 ? c->max_runs : 1);

	if (r->dmtcp == 0 && c->default_on && !c->allow_opt_out) {
		snprintf(err, errlen,
			 "--dmtcp=off: this cluster runs every job under DMTCP and does not allow "
			 "opting out (plugstack.conf allow_opt_out=no)");
		return -1;
	}
	if (asked && r->dmtcp == 0) {
		snprintf(err, errlen, "--dmtcp-%s needs --dmtcp, but --dmtcp=off was given",
			 r->interval >= 0 ? "interval" : r->lead >= 0 ? "lead" : "continue");
		return -1;
	}
	if (!j->on)
		return 0;
	if (j->interval > 0 && j->interval < c->min_interval) {
		snprintf(err, errlen,
			 "--dmtcp-interval=%lds is shorter than this cluster's minimum of %lds "
			 "(plugstack.conf min_interval); use 0 or at least %lds",
			 j->interval, c->min_interval, c->min_interval);
		return -1;
	}
	if (r->lead > c->max_lead_time) {
		snprintf(err, errlen,
			 "--dmtcp-lead=%lds is longer than this cluster's maximum of %lds "
			 "(plugstack.conf max_lead_time)",
			 r->lead, c->max_lead_time);
		return -1;
	}
	if (r->total > 0 && c->max_runs < 2) {
		snprintf(err, errlen,
			 "--dmtcp-continue: this cluster does not let jobs go on past their time "
			 "limit (plugstack.conf max_runs=%ld)",
			 c->max_runs);
		return -1;
	}
	if (r->runs > c->max_runs) {
		snprintf(err, errlen,
			 "--dmtcp-continue=%ld: this cluster allows at most %ld runs in all "
			 "(plugstack.conf max_runs)",
			 r->runs, c->max_runs);
		return -1;
	}
	if ((j->runs > 1 || j->total > 0) && j->lead == 0) {
		snprintf(err, errlen,
			 "--dmtcp-continue needs a checkpoint before the time limit, but the lead time "
			 "is 0; give --dmtcp-lead=DURATION (at most %lds)",
			 c->max_lead_time);
		return -1;
	}
	return 0;
}
