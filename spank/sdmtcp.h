/*
 * sdmtcp.h: the plugin's shared declarations. See README.md beside this file and
 * docs/architecture.md for which process runs what.
 */
#ifndef SDMTCP_H
#define SDMTCP_H

#include <stddef.h>

#define SDMTCP_MAX_INTERVAL (366L * 24 * 3600) /* a year: anything longer is a typo */
#define SDMTCP_ERRLEN 2048

#ifndef SDMTCP_LIBEXECDIR
#define SDMTCP_LIBEXECDIR "/usr/local/libexec/slurm-dmtcp"
#endif

/* Site policy and paths, from the plugstack.conf arguments (parsed in config.c only). */
struct sdmtcp_config {
	char dmtcp_prefix[1024];   /* dmtcp_prefix=: where DMTCP is installed ("" = PATH) */
	char agent[1024];          /* agent=: the per-job agent executable */
	char exec[1024];           /* exec=: the task launcher that runs a task under DMTCP */
	char checkpoint_dir[1024]; /* checkpoint_dir=: template, %u %U %j %h %% expanded by the agent */
	char runtime_dir[1024];    /* runtime_dir=: parent of the per-step runtime folders */
	int default_on;            /* default=on|off: every job under DMTCP unless it opts out */
	int allow_opt_out;         /* allow_opt_out=yes|no: may users say --dmtcp=off? */
	long min_interval;         /* min_interval=DURATION: shortest --dmtcp-interval allowed */
	long default_interval;     /* default_interval=DURATION: interval when none is given */
	long keep;                 /* keep=N: verified generations kept */
	long agent_timeout;        /* agent_timeout=DURATION: wait for the agent to be ready */
	int compress;              /* compress=on|off: gzip checkpoint images (DMTCP's gzip) */
	long lead_time;            /* lead_time=DURATION: checkpoint this long before the time limit */
	long max_lead_time;        /* max_lead_time=DURATION: longest --dmtcp-lead allowed */
	long max_runs;             /* max_runs=N: most runs a job may continue over (--dmtcp-continue) */
	int fail_without_checkpoint; /* on_no_checkpoint=restart|fail: a restarted job without a
				      * verified generation starts from the top (0) or fails (1) */
	char nodeprobe_cache[1024]; /* nodeprobe_cache=: the node probe's facts cache (read-only) */
	int on_incompatible_fail;  /* on_incompatible=requeue|fail: checkpoint from another class */
};

#ifndef SDMTCP_NODEPROBE_CACHE
#define SDMTCP_NODEPROBE_CACHE "/var/lib/slurm-dmtcp/nodefacts.db"
#endif

void sdmtcp_config_defaults(struct sdmtcp_config *c);
/* Parses plugstack arguments into c. Returns 0, or -1 with a message naming the bad argument
 * and the accepted forms in err. Unknown keys are errors. */
int sdmtcp_config_parse(struct sdmtcp_config *c, int ac, char **av, char *err, size_t errlen);

/* Value parsers shared by config.c and options.c. Each returns 0 or -1 with err filled. */
int sdmtcp_parse_duration(const char *s, long *out, char *err, size_t errlen);
int sdmtcp_parse_bool(const char *s, int *out);

/* What the user asked for on the command line, SBATCH lines or SLURM_SPANK_* variables.
 * -1 everywhere: not given. */
struct sdmtcp_request {
	int dmtcp;      /* 0 off, 1 on */
	long interval;  /* seconds (0 = no periodic checkpoints) */
	long lead;      /* --dmtcp-lead: seconds before the time limit (0 = no lead checkpoint) */
	long runs;      /* --dmtcp-continue=N: runs in all, 1 = no continuation */
	long total;     /* --dmtcp-continue=DURATION: run time wanted over all runs */
};
#define SDMTCP_REQUEST_INIT { -1, -1, -1, -1, -1 }

/* What a job gets: the request within the site's policy. */
struct sdmtcp_job {
	int on;
	long interval; /* seconds between periodic checkpoints, 0 = none */
	long lead;     /* seconds before the time limit, 0 = no lead checkpoint */
	long runs;     /* most runs in all when continuing past the time limit; 1 = no continuation */
	long total;    /* run time wanted over all runs, 0 = bounded by runs only */
};

/* Option callbacks store here (C globals: callbacks have no user pointer). */
extern struct sdmtcp_request sdmtcp_req;
/* Registers --dmtcp and --dmtcp-interval. */
int sdmtcp_options_register(void *spank_handle);
/* Parses one option value into r; 0 or -1 with err filled. */
int sdmtcp_option_dmtcp(struct sdmtcp_request *r, const char *arg, char *err, size_t errlen);
int sdmtcp_option_interval(struct sdmtcp_request *r, const char *arg, char *err, size_t errlen);
int sdmtcp_option_lead(struct sdmtcp_request *r, const char *arg, char *err, size_t errlen);
int sdmtcp_option_continue(struct sdmtcp_request *r, const char *arg, char *err, size_t errlen);

/* Decides from policy and request whether DMTCP is on, with which interval, lead time and
 * continuation. Returns 0, or -1 with a message in err when the request breaks policy. */
int sdmtcp_resolve(const struct sdmtcp_config *c, const struct sdmtcp_request *r,
		   struct sdmtcp_job *j, char *err, size_t errlen);

#endif
