/*
 * test_spank.c: unit tests of the plugin's parsers (durations, options, plugstack keys,
 * policy, the agent's ready message), run by `make c-test`, under valgrind when present.
 * The Slurm functions the linked files refer to are defined below as recorders: none of the
 * tested functions needs a real Slurm.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdarg.h>

#include <slurm/spank.h>

#include <arpa/inet.h>

#include "coordguard.h"
#include "sdmtcp.h"
#include "stepd.h"

/* Stand-ins for the symbols Slurm provides at load time. */
static char last_log[SDMTCP_ERRLEN];
void slurm_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_log, sizeof(last_log), fmt, ap);
	va_end(ap);
}
void slurm_verbose(const char *fmt, ...)
{
	(void)fmt;
}
spank_err_t spank_option_register(spank_t sp, struct spank_option *opt)
{
	(void)sp;
	(void)opt;
	return ESPANK_SUCCESS;
}
spank_err_t spank_get_item(spank_t sp, spank_item_t item, ...)
{
	(void)sp;
	(void)item;
	return ESPANK_ERROR;
}
spank_err_t spank_getenv(spank_t sp, const char *var, char *buf, int len)
{
	(void)sp;
	(void)var;
	(void)buf;
	(void)len;
	return ESPANK_ENV_NOEXIST;
}
spank_err_t spank_unsetenv(spank_t sp, const char *var)
{
	(void)sp;
	(void)var;
	return ESPANK_SUCCESS;
}
spank_err_t spank_setenv(spank_t sp, const char *var, const char *val, int overwrite)
{
	(void)sp;
	(void)var;
	(void)val;
	(void)overwrite;
	return ESPANK_SUCCESS;
}

static int failures, checks;

#define CHECK(cond, ...)                                                                  \
	do {                                                                              \
		checks++;                                                                 \
		if (!(cond)) {                                                            \
			failures++;                                                       \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);              \
			fprintf(stderr, __VA_ARGS__);                                     \
			fputc('\n', stderr);                                              \
		}                                                                         \
	} while (0)

static void test_durations(void)
{
	static const struct {
		const char *in;
		long want; /* -1: refused */
		const char *msg;
	} cases[] = {
		{ "900", 900, NULL },      { "0", 0, NULL },          { "90s", 90, NULL },
		{ "30m", 1800, NULL },     { "1h30m", 5400, NULL },   { "2d", 172800, NULL },
		{ "1h0m5s", 3605, NULL },  { "366d", 31622400, NULL },
		{ "abc", -1, "not a duration" },  { "-5", -1, "not a duration" },
		{ "1e99", -1, "not a duration" }, { "10x", -1, "not a duration" },
		{ "", -1, "empty value" },        { "1h30", -1, "not a duration" },
		{ "1.5h", -1, "not a duration" }, { " 5", -1, "not a duration" },
		{ "367d", -1, "longer than the maximum" },
		{ "99999999999999999999999", -1, "longer than the maximum" },
		{ "31622401", -1, "longer than the maximum" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[SDMTCP_ERRLEN] = "";
		long v = -2;
		int rc = sdmtcp_parse_duration(cases[i].in, &v, err, sizeof(err));
		if (cases[i].want >= 0) {
			CHECK(rc == 0 && v == cases[i].want, "duration '%s': rc %d value %ld, want %ld",
			      cases[i].in, rc, v, cases[i].want);
		} else {
			CHECK(rc < 0 && strstr(err, cases[i].msg), "duration '%s': rc %d err '%s'",
			      cases[i].in, rc, err);
			CHECK(strstr(err, "90s, 30m, 1h30m") || strstr(err, "366d"),
			      "duration '%s': message lacks accepted forms: '%s'", cases[i].in, err);
		}
	}
}

static void test_options(void)
{
	struct sdmtcp_request r = SDMTCP_REQUEST_INIT;
	char err[SDMTCP_ERRLEN];

	CHECK(sdmtcp_option_dmtcp(&r, NULL, err, sizeof(err)) == 0 && r.dmtcp == 1, "plain --dmtcp");
	CHECK(sdmtcp_option_dmtcp(&r, "off", err, sizeof(err)) == 0 && r.dmtcp == 0, "--dmtcp=off");
	CHECK(sdmtcp_option_dmtcp(&r, "YES", err, sizeof(err)) == 0 && r.dmtcp == 1, "--dmtcp=YES");
	CHECK(sdmtcp_option_dmtcp(&r, "maybe", err, sizeof(err)) < 0 &&
		      strstr(err, "--dmtcp=maybe") && strstr(err, "on or off"),
	      "--dmtcp=maybe: '%s'", err);
	CHECK(sdmtcp_option_dmtcp(&r, "", err, sizeof(err)) < 0, "--dmtcp= (empty) refused");
	CHECK(sdmtcp_option_interval(&r, "30m", err, sizeof(err)) == 0 && r.interval == 1800,
	      "--dmtcp-interval=30m");
	CHECK(sdmtcp_option_interval(&r, "10x", err, sizeof(err)) < 0 &&
		      strstr(err, "--dmtcp-interval=10x") && strstr(err, "0 turns periodic"),
	      "--dmtcp-interval=10x: '%s'", err);
	CHECK(sdmtcp_option_interval(&r, NULL, err, sizeof(err)) < 0, "--dmtcp-interval without value");
	CHECK(sdmtcp_option_lead(&r, "10m", err, sizeof(err)) == 0 && r.lead == 600, "--dmtcp-lead=10m");
	CHECK(sdmtcp_option_lead(&r, "soon", err, sizeof(err)) < 0 &&
		      strstr(err, "--dmtcp-lead=soon") && strstr(err, "1h30m"),
	      "--dmtcp-lead=soon: '%s'", err);
	static const struct {
		const char *in;
		int ok;
		long runs, total;
		const char *msg;
	} cont[] = {
		{ "3", 1, 3, 0, NULL },
		{ "3d", 1, -1, 259200, NULL },
		{ "2d12h", 1, -1, 216000, NULL },
		{ "off", 1, 1, 0, NULL },
		{ "0", 1, 1, 0, NULL }, /* 0 reads as "off" */
		{ "99999", 0, 0, 0, "from 1 to 9999" },
		{ "-2", 0, 0, 0, "a number of runs in all (3)" },
		{ "forever", 0, 0, 0, "--dmtcp-continue=forever" },
		{ "", 0, 0, 0, "a total run time with a unit" },
		{ "1h30", 0, 0, 0, "36h, 3d" },
	};
	for (size_t i = 0; i < sizeof(cont) / sizeof(cont[0]); i++) {
		struct sdmtcp_request q = SDMTCP_REQUEST_INIT;
		err[0] = '\0';
		int rc = sdmtcp_option_continue(&q, cont[i].in, err, sizeof(err));
		if (cont[i].ok)
			CHECK(rc == 0 && q.runs == cont[i].runs && q.total == cont[i].total,
			      "--dmtcp-continue=%s: rc %d runs %ld total %ld (%s)", cont[i].in, rc, q.runs,
			      q.total, err);
		else
			CHECK(rc < 0 && strstr(err, cont[i].msg), "--dmtcp-continue=%s: rc %d '%s'",
			      cont[i].in, rc, err);
	}
	CHECK(sdmtcp_option_continue(&r, NULL, err, sizeof(err)) < 0, "--dmtcp-continue without value");
}

static int parse(struct sdmtcp_config *c, const char *line, char *err)
{
	char buf[4096];
	char *av[32];
	int ac = 0;
	snprintf(buf, sizeof(buf), "%s", line);
	for (char *t = strtok(buf, " "); t && ac < 32; t = strtok(NULL, " "))
		av[ac++] = t;
	sdmtcp_config_defaults(c);
	return sdmtcp_config_parse(c, ac, av, err, SDMTCP_ERRLEN);
}

static void test_config(void)
{
	struct sdmtcp_config c;
	char err[SDMTCP_ERRLEN];

	CHECK(parse(&c, "", err) == 0 && !c.default_on && c.allow_opt_out && c.min_interval == 60 &&
		      c.keep == 2 && !strcmp(c.checkpoint_dir, "%h/.slurm-dmtcp/%j") && !c.compress &&
		      c.lead_time == 300 && c.max_lead_time == 3600 && c.max_runs == 10 &&
		      !c.fail_without_checkpoint &&
		      !strcmp(c.nodeprobe_cache, "/var/lib/slurm-dmtcp/nodefacts.db") &&
		      !c.on_incompatible_fail,
	      "defaults");
	CHECK(parse(&c, "compress=on lead_time=2m max_lead_time=10m max_runs=4 on_no_checkpoint=fail",
		    err) == 0 &&
		      c.compress && c.lead_time == 120 && c.max_lead_time == 600 && c.max_runs == 4 &&
		      c.fail_without_checkpoint,
	      "checkpoint keys: %s", err);
	CHECK(parse(&c, "on_incompatible=fail nodeprobe_cache=/var/cache/facts.db", err) == 0 &&
		      c.on_incompatible_fail && !strcmp(c.nodeprobe_cache, "/var/cache/facts.db"),
	      "on_incompatible=fail nodeprobe_cache=: %s", err);
	CHECK(parse(&c, "on_incompatible=fail on_incompatible=requeue", err) == 0 &&
		      !c.on_incompatible_fail,
	      "on_incompatible=requeue, the last one wins: %s", err);
	CHECK(parse(&c, "dmtcp_prefix=/opt/dmtcp default=on allow_opt_out=no min_interval=5m "
			"default_interval=1h keep=3 checkpoint_dir=/scratch/%u/%j agent_timeout=10",
		    err) == 0,
	      "all keys: %s", err);
	CHECK(c.default_on && !c.allow_opt_out && c.min_interval == 300 && c.default_interval == 3600 &&
		      c.keep == 3 && !strcmp(c.dmtcp_prefix, "/opt/dmtcp") && c.agent_timeout == 10,
	      "all keys parsed");
	static const struct {
		const char *line, *msg;
	} bad[] = {
		{ "colour=blue", "'colour' is unknown" },
		{ "default", "is not key=value" },
		{ "=on", "is not key=value" },
		{ "default=maybe", "default=maybe: expected on or off" },
		{ "keep=0", "keep=0: expected a whole number from 1 to 100" },
		{ "keep=2x", "keep=2x" },
		{ "dmtcp_prefix=relative/dir", "expected an absolute folder" },
		{ "checkpoint_dir=~/x", "checkpoint_dir=~/x" },
		{ "min_interval=soon", "min_interval=soon" },
		{ "agent_timeout=0", "agent_timeout=0" },
		{ "min_interval=1h default_interval=30m", "shorter than min_interval" },
		{ "compress=gzip", "compress=gzip: expected on or off" },
		{ "on_no_checkpoint=retry", "on_no_checkpoint=retry: expected restart or fail" },
		{ "max_runs=0", "max_runs=0: expected a whole number from 1 to 100" },
		{ "lead_time=2h", "lead_time (7200s) is longer than max_lead_time (3600s)" },
		{ "lead_time=later", "lead_time=later" },
		{ "on_incompatible=retry", "on_incompatible=retry: expected requeue or fail" },
		{ "on_incompatible=FAIL", "on_incompatible=FAIL: expected requeue or fail" },
		{ "nodeprobe_cache=facts.db", "nodeprobe_cache=facts.db: expected an absolute path" },
		{ "colour=blue", "known keys: dmtcp_prefix agent exec checkpoint_dir runtime_dir default "
				 "allow_opt_out min_interval default_interval keep agent_timeout compress "
				 "lead_time max_lead_time max_runs on_no_checkpoint nodeprobe_cache "
				 "on_incompatible" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK(parse(&c, bad[i].line, err) < 0 && strstr(err, bad[i].msg), "'%s': got '%s'",
		      bad[i].line, err);
	}
}

static void test_resolve(void)
{
	struct sdmtcp_config c;
	char err[SDMTCP_ERRLEN];
	struct sdmtcp_job j;
	static const struct {
		const char *policy;
		struct sdmtcp_request r; /* dmtcp, interval, lead, runs, total */
		int ok;
		struct sdmtcp_job want; /* on, interval, lead, runs, total */
		const char *msg;
	} cases[] = {
		{ "", { -1, -1, -1, -1, -1 }, 1, { 0, 3600, 300, 1, 0 }, NULL },
		{ "", { 1, -1, -1, -1, -1 }, 1, { 1, 3600, 300, 1, 0 }, NULL },
		{ "", { -1, 120, -1, -1, -1 }, 1, { 1, 120, 300, 1, 0 }, NULL }, /* implies --dmtcp */
		{ "", { 1, 0, -1, -1, -1 }, 1, { 1, 0, 300, 1, 0 }, NULL },
		{ "", { 1, 30, -1, -1, -1 }, 0, { 0 }, "shorter than this cluster's minimum of 60s" },
		{ "", { 0, 120, -1, -1, -1 }, 0, { 0 }, "--dmtcp-interval needs --dmtcp" },
		{ "default=on", { -1, -1, -1, -1, -1 }, 1, { 1, 3600, 300, 1, 0 }, NULL },
		{ "default=on", { 0, -1, -1, -1, -1 }, 1, { 0, 3600, 300, 1, 0 }, NULL },
		{ "default=on allow_opt_out=no", { 0, -1, -1, -1, -1 }, 0, { 0 }, "allow_opt_out=no" },
		{ "default=on allow_opt_out=no", { -1, -1, -1, -1, -1 }, 1, { 1, 3600, 300, 1, 0 }, NULL },
		{ "min_interval=0 default_interval=0", { 1, 1, -1, -1, -1 }, 1, { 1, 1, 300, 1, 0 }, NULL },
		{ "", { -1, -1, 600, -1, -1 }, 1, { 1, 3600, 600, 1, 0 }, NULL }, /* lead implies on */
		{ "", { -1, -1, 7200, -1, -1 }, 0, { 0 }, "longer than this cluster's maximum of 3600s" },
		{ "", { 0, -1, 60, -1, -1 }, 0, { 0 }, "--dmtcp-lead needs --dmtcp" },
		{ "", { -1, -1, -1, 3, -1 }, 1, { 1, 3600, 300, 3, 0 }, NULL },
		{ "", { -1, -1, -1, -1, 86400 }, 1, { 1, 3600, 300, 10, 86400 }, NULL },
		{ "", { -1, -1, -1, 11, -1 }, 0, { 0 }, "at most 10 runs in all (plugstack.conf max_runs)" },
		{ "max_runs=1", { -1, -1, -1, -1, 3600 }, 0, { 0 }, "does not let jobs go on past" },
		{ "", { 1, -1, 0, 3, -1 }, 0, { 0 }, "needs a checkpoint before the time limit" },
		{ "", { 0, -1, -1, 3, -1 }, 0, { 0 }, "--dmtcp-continue needs --dmtcp" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK(parse(&c, cases[i].policy, err) == 0, "policy '%s': %s", cases[i].policy, err);
		err[0] = '\0';
		memset(&j, 0, sizeof(j));
		int rc = sdmtcp_resolve(&c, &cases[i].r, &j, err, sizeof(err));
		if (cases[i].ok)
			CHECK(rc == 0 && j.on == cases[i].want.on &&
				      j.interval == cases[i].want.interval && j.lead == cases[i].want.lead &&
				      j.runs == cases[i].want.runs && j.total == cases[i].want.total,
			      "case %zu: rc %d on %d interval %ld lead %ld runs %ld total %ld (%s)", i, rc,
			      j.on, j.interval, j.lead, j.runs, j.total, err);
		else
			CHECK(rc < 0 && strstr(err, cases[i].msg), "case %zu: rc %d err '%s'", i, rc, err);
	}
}

struct seen {
	char keys[512];
};

static void collect(void *ctx, const char *k, const char *v)
{
	struct seen *s = ctx;
	size_t n = strlen(s->keys);
	snprintf(s->keys + n, sizeof(s->keys) - n, "%s=%s;", k, v);
}

static void test_poll_ms(void)
{
	static const struct {
		long in;
		int want;
	} cases[] = {
		{ -5, 0 }, { 0, 0 }, { 1, 1 }, { 30000, 30000 }, { (long)INT_MAX, INT_MAX },
		{ (long)INT_MAX + 1, INT_MAX }, { 400L * 86400 * 1000, INT_MAX }, { LONG_MAX, INT_MAX },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK(sdmtcp_poll_ms(cases[i].in) == cases[i].want, "poll_ms(%ld) = %d, want %d",
		      cases[i].in, sdmtcp_poll_ms(cases[i].in), cases[i].want);
}

static void test_ready(void)
{
	static const struct {
		const char *msg;
		int want;
		const char *out;
	} cases[] = {
		{ "sdmtcp/1 ready\ncoord_host=n1\ncoord_port=4242\nckptdir=/a b\nend\n", 1,
		  "coord_host=n1;coord_port=4242;ckptdir=/a b;" },
		{ "sdmtcp/1 error\nmessage=DMTCP not found in /x\nend\n", 0, "DMTCP not found in /x" },
		{ "sdmtcp/2 ready\nend\n", -1, "another protocol" },
		{ "", -1, "without a word" },
		{ "sdmtcp/1 ready\ncoord_port=1\n", -1, "ended early" },
		{ "sdmtcp/1 ready\nCOORD=1\nend\n", -1, "malformed key" },
		{ "sdmtcp/1 ready\nnoequals\nend\n", -1, "malformed line" },
		{ "sdmtcp/1 error\nend\n", 0, "failed without saying why" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[512], err[SDMTCP_ERRLEN] = "";
		struct seen s = { "" };
		snprintf(buf, sizeof(buf), "%s", cases[i].msg);
		int rc = sdmtcp_parse_ready(buf, collect, &s, err, sizeof(err));
		CHECK(rc == cases[i].want, "ready case %zu: rc %d want %d (%s)", i, rc, cases[i].want, err);
		if (rc == 1)
			CHECK(!strcmp(s.keys, cases[i].out), "ready case %zu: keys '%s'", i, s.keys);
		else
			CHECK(strstr(err, cases[i].out) != NULL, "ready case %zu: err '%s'", i, err);
	}
}

static void test_local_refusal(void)
{
	struct sdmtcp_config c;
	char err[SDMTCP_ERRLEN];
	struct sdmtcp_request r = { 1, 10, -1, -1, -1 };

	CHECK(parse(&c, "", err) == 0, "defaults");
	last_log[0] = '\0';
	CHECK(sdmtcp_local_post_opt(&c, &r) < 0 && strstr(last_log, "minimum of 60s"),
	      "sbatch refuses an interval below min_interval: '%s'", last_log);
	r.interval = 120;
	last_log[0] = '\0';
	int rc = sdmtcp_local_post_opt(&c, &r);
	if (getuid() == 0)
		CHECK(rc < 0 && strstr(last_log, "root"), "root's --dmtcp refused: '%s'", last_log);
	else
		CHECK(rc == 0, "a user's --dmtcp accepted: '%s'", last_log);
}

/* Creates path with text in it. 0, or -1. */
static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int rc;

	if (!f)
		return -1;
	rc = fputs(text, f) < 0 ? -1 : 0;
	return fclose(f) == 0 ? rc : -1;
}

/* Makes rt/user/leaf (0700) with a coordinator.port holding port; owner -1 keeps the caller's. */
static void make_step_dir(const char *rt, const char *user, const char *leaf, const char *port,
			  int owner)
{
	char p[600];

	snprintf(p, sizeof(p), "%s/%s", rt, user);
	CHECK(mkdir(p, 0700) == 0 || errno == EEXIST, "mkdir %s", p);
	snprintf(p, sizeof(p), "%s/%s/%s", rt, user, leaf);
	CHECK(mkdir(p, 0700) == 0, "mkdir %s", p);
	snprintf(p, sizeof(p), "%s/%s/%s/coordinator.port", rt, user, leaf);
	CHECK(write_file(p, port) == 0, "create %s", p);
	if (owner >= 0) {
		snprintf(p, sizeof(p), "chown -R %d '%s/%s'", owner, rt, user);
		CHECK(system(p) == 0, "chown");
	}
}

static void test_batch_coordinator(void)
{
	char base[] = "/tmp/sdmtcp-test-XXXXXX";
	char p[600], q[600], usual[48], alt[64];
	uid_t me = getuid();

	CHECK(mkdtemp(base) != NULL, "mkdtemp");
	snprintf(usual, sizeof(usual), "slurm-dmtcp-%u", (unsigned)me);
	snprintf(alt, sizeof(alt), "slurm-dmtcp-%u.Xy12abCD90", (unsigned)me);
	make_step_dir(base, usual, "42.batch", "40581\n", -1);
	CHECK(sdmtcp_batch_coordinator_is(base, me, 42, "40581") == 1, "this job's coordinator");
	CHECK(sdmtcp_batch_coordinator_is(base, me, 42, "40582") == 0, "another port");
	CHECK(sdmtcp_batch_coordinator_is(base, me, 43, "40581") == 0, "another job");
	CHECK(sdmtcp_batch_coordinator_is(base, me + 1, 42, "40581") == 0, "another user");
	CHECK(sdmtcp_batch_coordinator_is(base, me, 42, "") == 0, "empty port");
	CHECK(sdmtcp_batch_coordinator_is("/nonexistent", me, 42, "40581") == 0, "no runtime folder");
	/* A link in place of the job's folder is not followed. */
	snprintf(q, sizeof(q), "%s/%s/44.batch", base, usual);
	snprintf(p, sizeof(p), "%s/%s/42.batch", base, usual);
	CHECK(symlink(p, q) == 0, "symlink");
	CHECK(sdmtcp_batch_coordinator_is(base, me, 44, "40581") == 0, "symbolic link refused");
	unlink(q);
	/* The agent's other folder (the usual name was planted): found there too, with its path. */
	make_step_dir(base, alt, "45.batch", "40590\n", -1);
	CHECK(sdmtcp_batch_coordinator_is(base, me, 45, "40590") == 1, "in slurm-dmtcp-<uid>.<suffix>");
	{
		int fd = sdmtcp_find_step_dir(base, me, "45.batch", 0, p, sizeof(p));
		snprintf(q, sizeof(q), "%s/%s/45.batch", base, alt);
		CHECK(fd >= 0 && !strcmp(p, q), "found at %s, want %s", p, q);
		if (fd >= 0)
			close(fd);
		CHECK(sdmtcp_find_step_dir(base, me, "45.batch", 1, NULL, 0) < 0, "only one");
	}
	/* Names that look like the user's but are not: a prefix, an empty suffix. */
	snprintf(q, sizeof(q), "slurm-dmtcp-%u0", (unsigned)me);
	make_step_dir(base, q, "46.batch", "40591\n", -1);
	CHECK(sdmtcp_batch_coordinator_is(base, me, 46, "40591") == 0, "slurm-dmtcp-<uid>0 is not the user's");
	snprintf(q, sizeof(q), "slurm-dmtcp-%u.", (unsigned)me);
	make_step_dir(base, q, "47.batch", "40592\n", -1);
	CHECK(sdmtcp_batch_coordinator_is(base, me, 47, "40592") == 0, "an empty suffix is not the agent's");
	snprintf(p, sizeof(p), "rm -rf '%s'", base);
	CHECK(system(p) == 0, "cleanup");

	/* Planted by another user at the usual name: a link to a folder that holds the port, or a
	 * folder of its own that does; neither is opened. */
	CHECK(mkdtemp(strcpy(base, "/tmp/sdmtcp-test-XXXXXX")) != NULL, "mkdtemp");
	make_step_dir(base, "elsewhere", "48.batch", "40593\n", -1);
	snprintf(p, sizeof(p), "%s/elsewhere", base);
	snprintf(q, sizeof(q), "%s/%s", base, usual);
	CHECK(symlink(p, q) == 0, "symlink");
	CHECK(sdmtcp_batch_coordinator_is(base, me, 48, "40593") == 0, "a link at the usual name is not followed");
	CHECK(sdmtcp_find_step_dir(base, me, "48.batch", 0, NULL, 0) < 0, "nor found");
	unlink(q);
	if (me == 0) {
		make_step_dir(base, usual, "49.batch", "40594\n", 54321);
		CHECK(sdmtcp_batch_coordinator_is(base, me, 49, "40594") == 0, "a folder of another user is not the user's");
		make_step_dir(base, alt, "49.batch", "40595\n", -1);
		CHECK(sdmtcp_batch_coordinator_is(base, me, 49, "40595") == 1, "the agent's own folder beside it");
	}
	snprintf(p, sizeof(p), "rm -rf '%s'", base);
	CHECK(system(p) == 0, "cleanup");
}

/* runtime_dir as root opens it: owned by root or the user from / down, sticky where others
 * may write; links are resolved first, then nothing is followed. */
static void test_open_runtime_dir(void)
{
	char base[] = "/tmp/sdmtcp-test-XXXXXX";
	char p[600];
	uid_t me = getuid();
	static const struct {
		const char *name;
		mode_t mode;
		int foreign; /* chown to another user (root only) */
		int want;    /* 1: opened */
	} cases[] = {
		{ "sticky", 01777, 0, 1 },
		{ "private", 0700, 0, 1 },
		{ "open-not-sticky", 0777, 0, 0 },
		{ "group-writable", 0770, 0, 0 },
		{ "foreign", 0755, 1, 0 },
		{ "foreign-sticky", 01777, 1, 0 },
	};

	CHECK(mkdtemp(base) != NULL, "mkdtemp");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int fd;
		if (cases[i].foreign && me != 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", base, cases[i].name);
		CHECK(mkdir(p, 0700) == 0 && chmod(p, cases[i].mode) == 0, "mkdir %s", p);
		if (cases[i].foreign)
			CHECK(chown(p, 54321, 54321) == 0, "chown %s", p);
		fd = sdmtcp_open_runtime_dir(p, me);
		CHECK((fd >= 0) == cases[i].want, "%s: opened %d, want %d", cases[i].name, fd >= 0,
		      cases[i].want);
		if (fd >= 0)
			close(fd);
		/* The same through a link: where it leads is checked. */
		snprintf(p, sizeof(p), "%s/link-%s", base, cases[i].name);
		CHECK(symlink(cases[i].name, p) == 0, "symlink %s", p);
		fd = sdmtcp_open_runtime_dir(p, me);
		CHECK((fd >= 0) == cases[i].want, "link to %s: opened %d, want %d", cases[i].name,
		      fd >= 0, cases[i].want);
		if (fd >= 0)
			close(fd);
	}
	/* A folder under a parent that is not safe is not either. */
	snprintf(p, sizeof(p), "%s/open-not-sticky/below", base);
	CHECK(mkdir(p, 0700) == 0, "mkdir %s", p);
	CHECK(sdmtcp_open_runtime_dir(p, me) < 0, "below a folder writable by all, not sticky");
	CHECK(sdmtcp_open_runtime_dir("/nonexistent/x", me) < 0, "missing");
	snprintf(p, sizeof(p), "rm -rf '%s'", base);
	CHECK(system(p) == 0, "cleanup");
}

/* The runtime folder is removed as the job's user: everything in it goes, a link in it is
 * not followed, and a folder the user may not remove stays. */
static void test_remove_as(void)
{
	char base[] = "/tmp/sdmtcp-test-XXXXXX";
	char user_dir[256], run[300], p[600], outside[256];
	uid_t uid = getuid() == 0 ? 65534 : getuid();
	gid_t gid = getuid() == 0 ? 65534 : getgid();

	CHECK(mkdtemp(base) != NULL, "mkdtemp");
	chmod(base, 01777); /* like /tmp: the user may remove their own folder from it */
	snprintf(outside, sizeof(outside), "%s/outside", base);
	CHECK(mkdir(outside, 0755) == 0, "mkdir %s", outside);
	snprintf(p, sizeof(p), "%s/keep", outside);
	CHECK(write_file(p, "") == 0, "create %s", p);
	snprintf(user_dir, sizeof(user_dir), "%s/slurm-dmtcp-%u", base, (unsigned)uid);
	snprintf(run, sizeof(run), "%s/42.batch", user_dir);
	CHECK(mkdir(user_dir, 0700) == 0 && mkdir(run, 0700) == 0, "mkdir %s", run);
	snprintf(p, sizeof(p), "%s/tmp", run);
	CHECK(mkdir(p, 0700) == 0, "mkdir %s", p);
	snprintf(p, sizeof(p), "%s/tmp/dmtcpSharedArea", run);
	CHECK(write_file(p, "") == 0, "create %s", p);
	snprintf(p, sizeof(p), "%s/link", run);
	CHECK(symlink(outside, p) == 0, "symlink");
	if (getuid() == 0) {
		snprintf(p, sizeof(p), "chown -R %u:%u '%s'", (unsigned)uid, (unsigned)gid, user_dir);
		CHECK(system(p) == 0, "chown");
	}
	CHECK(sdmtcp_remove_as(uid, gid, run, 5000) == 0, "remove %s", run);
	CHECK(access(run, F_OK) != 0, "the runtime folder is gone");
	CHECK(access(user_dir, F_OK) != 0, "the empty per-user folder is gone");
	snprintf(p, sizeof(p), "%s/keep", outside);
	CHECK(access(p, F_OK) == 0, "the link's target is untouched");
	if (getuid() == 0) {
		/* root's folder, not empty: the user cannot remove it. */
		CHECK(sdmtcp_remove_as(uid, gid, outside, 5000) < 0, "refused as the user");
		CHECK(strstr(sdmtcp_remove_why, "exited with 1") != NULL, "the reason is logged: %s",
		      sdmtcp_remove_why);
		CHECK(access(p, F_OK) == 0, "root's folder stays");
	}
	CHECK(sdmtcp_remove_as(uid, gid, "", 5000) < 0, "empty path refused");
	CHECK(sdmtcp_remove_as(uid, gid, "relative", 5000) < 0, "relative path refused");
	snprintf(p, sizeof(p), "rm -rf '%s'", base);
	CHECK(system(p) == 0, "cleanup");
}

/* The first removers are SIGKILLed as Slurm's container kill would: they are tried again. */
static int kills_left;
static void kill_remover(pid_t child)
{
	if (kills_left > 0) {
		kills_left--;
		kill(child, SIGKILL);
	}
}

static void test_remove_retrying(void)
{
	char base[] = "/tmp/sdmtcp-test-XXXXXX";
	char user_dir[256], run[300], p[600];
	uid_t uid = getuid() == 0 ? 65534 : getuid();
	gid_t gid = getuid() == 0 ? 65534 : getgid();

	CHECK(mkdtemp(base) != NULL, "mkdtemp");
	chmod(base, 01777);
	snprintf(user_dir, sizeof(user_dir), "%s/slurm-dmtcp-%u", base, (unsigned)uid);
	snprintf(run, sizeof(run), "%s/42.step-0", user_dir);
	CHECK(mkdir(user_dir, 0700) == 0 && mkdir(run, 0700) == 0, "mkdir %s", run);
	snprintf(p, sizeof(p), "%s/coordinator.failed", run);
	CHECK(write_file(p, "x") == 0, "create %s", p);
	if (getuid() == 0) {
		snprintf(p, sizeof(p), "chown -R %u:%u '%s'", (unsigned)uid, (unsigned)gid, user_dir);
		CHECK(system(p) == 0, "chown");
	}
	sdmtcp_remove_forked = kill_remover;

	/* Killed once: a single try fails and says so. */
	kills_left = 1;
	CHECK(sdmtcp_remove_retrying(uid, gid, run, 5000, 1) < 0, "one try, killed");
	CHECK(sdmtcp_remove_killed, "the failure is a kill");
	CHECK(strstr(sdmtcp_remove_why, "killed by signal 9") != NULL, "the reason: %s", sdmtcp_remove_why);

	/* Killed twice: the third try removes the folder. */
	kills_left = 2;
	CHECK(sdmtcp_remove_retrying(uid, gid, run, 5000, 5) == 0, "removed on the third try: %s",
	      sdmtcp_remove_why);
	CHECK(kills_left == 0, "both kills were used");
	CHECK(access(run, F_OK) != 0, "the runtime folder is gone");

	/* Killed every time: bounded. */
	CHECK(mkdir(user_dir, 0700) == 0 && mkdir(run, 0700) == 0, "mkdir %s again", run);
	if (getuid() == 0) {
		snprintf(p, sizeof(p), "chown -R %u:%u '%s'", (unsigned)uid, (unsigned)gid, user_dir);
		CHECK(system(p) == 0, "chown");
	}
	kills_left = 100;
	CHECK(sdmtcp_remove_retrying(uid, gid, run, 5000, 3) < 0, "killed every time");
	CHECK(kills_left == 97, "three tries, not more (%d kills left)", kills_left);
	sdmtcp_remove_forked = NULL;

	/* Another failure is not tried again. */
	if (getuid() == 0) {
		char outside[300];
		snprintf(outside, sizeof(outside), "%s/root-owned", base);
		CHECK(mkdir(outside, 0755) == 0, "mkdir %s", outside);
		snprintf(p, sizeof(p), "%s/keep", outside);
		CHECK(write_file(p, "") == 0, "create %s", p);
		CHECK(sdmtcp_remove_retrying(uid, gid, outside, 5000, 5) < 0, "refused as the user");
		CHECK(!sdmtcp_remove_killed, "not a kill: %s", sdmtcp_remove_why);
	}
	snprintf(p, sizeof(p), "rm -rf '%s'", base);
	CHECK(system(p) == 0, "cleanup");
}

/* The task launcher is checked for the job's user, by owner, group and mode. */
static void test_executable_by(void)
{
	static const struct {
		mode_t mode;
		uid_t uid;
		gid_t gid, extra;
		int want;
	} cases[] = {
		{ 0755, 4242, 4242, 0, 1 },  /* others may */
		{ 0750, 4242, 4242, 0, 0 },  /* group only, user not in it */
		{ 0750, 4242, 4242, 77, 1 }, /* in the file's group (77) as a supplementary group */
		{ 0750, 4242, 77, 0, 1 },    /* the file's group as primary group */
		{ 0700, 4242, 77, 0, 0 },    /* owner only: root may, the user not */
		{ 0744, 4242, 4242, 0, 0 },  /* no execute bit for others */
		{ 0700, 4343, 4242, 0, 1 },  /* the user owns it */
		{ 0600, 4343, 4242, 0, 0 },  /* owned, no execute bit */
	};
	char base[] = "/tmp/sdmtcp-exec-XXXXXX", f[64];

	CHECK(mkdtemp(base) != NULL, "mkdtemp");
	snprintf(f, sizeof(f), "%s/launcher", base);
	CHECK(write_file(f, "#!/bin/sh\n") == 0, "launcher written");
	if (getuid() != 0)
		printf("SKIP launcher owner and group cases: chown needs root\n");
	for (size_t i = 0; getuid() == 0 && i < sizeof(cases) / sizeof(cases[0]); i++) {
		gid_t extra[1] = { cases[i].extra };
		CHECK(chmod(f, cases[i].mode) == 0 && chown(f, 4343, 77) == 0, "chmod/chown");
		CHECK(sdmtcp_executable_by(f, cases[i].uid, cases[i].gid, extra, cases[i].extra ? 1 : 0) ==
			      cases[i].want,
		      "mode %o uid %u gid %u extra %u: want %d", (unsigned)cases[i].mode,
		      (unsigned)cases[i].uid, (unsigned)cases[i].gid, (unsigned)cases[i].extra,
		      cases[i].want);
	}
	CHECK(!sdmtcp_executable_by(base, 4343, 77, NULL, 0), "a folder is not a launcher");
	snprintf(f, sizeof(f), "%s/missing", base);
	CHECK(!sdmtcp_executable_by(f, 4343, 77, NULL, 0) && errno == ENOENT, "missing: ENOENT");
	snprintf(f, sizeof(f), "rm -rf '%s'", base);
	CHECK(system(f) == 0, "cleanup");
}

/* Slurm's commands are looked for in bin/ beside the sbin/ of slurmstepd. */
static void test_bindir(void)
{
	static const struct {
		const char *exe, *want; /* want NULL: refused */
	} cases[] = {
		{ "/usr/sbin/slurmstepd", "/usr/bin" },
		{ "/opt/slurm/sbin/slurmstepd", "/opt/slurm/bin" },
		{ "/opt/slurm-24.11/sbin/slurmstepd", "/opt/slurm-24.11/bin" },
		{ "/slurmstepd", NULL },
		{ "slurmstepd", NULL },
		{ "sbin/slurmstepd", NULL },
	};
	char out[64], small[8];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = sdmtcp_bindir_of(cases[i].exe, out, sizeof(out));
		if (cases[i].want)
			CHECK(rc == 0 && !strcmp(out, cases[i].want), "%s -> %s (got %s)", cases[i].exe,
			      cases[i].want, rc ? "refused" : out);
		else
			CHECK(rc < 0, "%s refused", cases[i].exe);
	}
	CHECK(sdmtcp_bindir_of("/opt/slurm/sbin/slurmstepd", small, sizeof(small)) < 0,
	      "a folder longer than the buffer is refused, not cut");
}

/* Every case of the admission decision: only a proven owner passes. */
static void test_coordguard_decide(void)
{
	enum { U = 1001, OTHER = 1002, EST = SDMTCP_TCP_ESTABLISHED, FIN_WAIT2 = 5, TIME_WAIT = 6, CLOSE_WAIT = 8 };
	static const struct {
		const char *name;
		struct sdmtcp_peer p;
		unsigned long job_uid;
		int local_only, admit;
	} cases[] = {
		{ "the job's user's live socket", { SDMTCP_PEER_FOUND, U, EST, 77, 1, 0 }, U, 1, 1 },
		{ "the job's user's socket, closing", { SDMTCP_PEER_FOUND, U, CLOSE_WAIT, 77, 1, 0 }, U, 1, 1 },
		{ "another user's live socket", { SDMTCP_PEER_FOUND, OTHER, EST, 77, 1, 0 }, U, 1, 0 },
		{ "another user's socket, allowed address", { SDMTCP_PEER_FOUND, OTHER, EST, 77, 1, 1 }, U, 0, 0 },
		{ "root's live socket", { SDMTCP_PEER_FOUND, 0, EST, 77, 1, 0 }, U, 1, 1 },
		{ "orphan: established, no inode", { SDMTCP_PEER_FOUND, 0, EST, 0, 1, 0 }, U, 1, 0 },
		{ "orphan in FIN_WAIT2", { SDMTCP_PEER_FOUND, 0, FIN_WAIT2, 0, 1, 0 }, U, 1, 0 },
		{ "TIME_WAIT", { SDMTCP_PEER_FOUND, 0, TIME_WAIT, 0, 1, 0 }, U, 1, 0 },
		{ "TIME_WAIT with an inode", { SDMTCP_PEER_FOUND, 0, TIME_WAIT, 9, 1, 0 }, U, 1, 0 },
		{ "root's socket in CLOSE_WAIT", { SDMTCP_PEER_FOUND, 0, CLOSE_WAIT, 77, 1, 0 }, U, 1, 0 },
		{ "TIME_WAIT on an allowed address", { SDMTCP_PEER_FOUND, 0, TIME_WAIT, 0, 0, 1 }, U, 0, 0 },
		{ "uid 0 for a coordinator of root", { SDMTCP_PEER_FOUND, 0, TIME_WAIT, 0, 1, 0 }, 0, 1, 0 },
		{ "gone, local address", { SDMTCP_PEER_GONE, 0, 0, 0, 1, 1 }, U, 0, 0 },
		{ "gone, another host, local only", { SDMTCP_PEER_GONE, 0, 0, 0, 0, 1 }, U, 1, 0 },
		{ "another host, not a node of the step", { SDMTCP_PEER_GONE, 0, 0, 0, 0, 0 }, U, 0, 0 },
		{ "another node of the step", { SDMTCP_PEER_GONE, 0, 0, 0, 0, 1 }, U, 0, 1 },
		{ "table unreadable", { SDMTCP_PEER_UNKNOWN, 0, 0, 0, 1, 1 }, U, 0, 0 },
		{ "table unreadable, another node", { SDMTCP_PEER_UNKNOWN, 0, 0, 0, 0, 1 }, U, 0, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why = sdmtcp_guard_decide(&cases[i].p, cases[i].job_uid, cases[i].local_only);
		if (cases[i].admit)
			CHECK(why == NULL, "%s: admitted (refused: %s)", cases[i].name, why ? why : "");
		else
			CHECK(why != NULL && *why, "%s: refused with a reason", cases[i].name);
	}
}

static void set_v4(struct sockaddr_storage *ss, const char *addr, unsigned port)
{
	memset(ss, 0, sizeof(*ss));
	((struct sockaddr_in *)ss)->sin_family = AF_INET;
	((struct sockaddr_in *)ss)->sin_port = htons((unsigned short)port);
	inet_pton(AF_INET, addr, &((struct sockaddr_in *)ss)->sin_addr);
}

static void set_v6(struct sockaddr_storage *ss, const char *addr, unsigned port)
{
	memset(ss, 0, sizeof(*ss));
	((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
	((struct sockaddr_in6 *)ss)->sin6_port = htons((unsigned short)port);
	inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)ss)->sin6_addr);
}

/* The kernel's socket table names the owner, state and inode of a real local connection
 * (this process); a client that closed before the accept is found with no owner (uid 0,
 * no inode, not established) and refused; a connection that does not exist here is not
 * found; an IPv4 client seen by an IPv6 listener (v4-mapped addresses) is found too. */
static void test_coordguard_diag(void)
{
	struct sockaddr_storage peer, local, p6, l6;
	struct sockaddr_in *addr = (struct sockaddr_in *)&local;
	struct sdmtcp_peer p;
	socklen_t len = sizeof(local);
	int lfd, cfd = -1, sfd = -1;

	set_v4(&local, "127.0.0.1", 0);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&local, sizeof(struct sockaddr_in)) == 0 &&
		      listen(lfd, 4) == 0 && getsockname(lfd, (struct sockaddr *)&local, &len) == 0,
	      "listening socket");
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(cfd >= 0 && connect(cfd, (struct sockaddr *)&local, sizeof(struct sockaddr_in)) == 0, "connect");
	sfd = accept(lfd, NULL, NULL);
	len = sizeof(peer);
	CHECK(sfd >= 0 && getpeername(sfd, (struct sockaddr *)&peer, &len) == 0, "accept");
	memset(&p, 0, sizeof(p));
	if (sdmtcp_guard_lookup_diag(&peer, &local, &p) == SDMTCP_PEER_UNKNOWN) {
		printf("SKIP sock_diag checks: this kernel does not answer NETLINK_SOCK_DIAG (the guard reads /proc/net/tcp)\n");
	} else {
		CHECK(p.found == SDMTCP_PEER_FOUND && p.uid == (unsigned long)getuid() &&
			      p.state == SDMTCP_TCP_ESTABLISHED && p.inode != 0,
		      "a live local connection: found %d uid %lu state %u inode %lu", p.found, p.uid, p.state, p.inode);
		p.local = 1;
		CHECK(sdmtcp_guard_decide(&p, (unsigned long)getuid(), 1) == NULL, "and admitted");
		set_v6(&p6, "::ffff:127.0.0.1", ntohs(((struct sockaddr_in *)&peer)->sin_port));
		set_v6(&l6, "::ffff:127.0.0.1", ntohs(addr->sin_port));
		memset(&p, 0, sizeof(p));
		CHECK(sdmtcp_guard_lookup_diag(&p6, &l6, &p) == SDMTCP_PEER_FOUND && p.uid == (unsigned long)getuid(),
		      "v4-mapped client found");
		((struct sockaddr_in *)&peer)->sin_port = htons(1); /* no such connection */
		CHECK(sdmtcp_guard_lookup_diag(&peer, &local, &p) == SDMTCP_PEER_GONE, "no socket: not found");

		/* A client that writes and closes before the accept, with a FIN (its socket is
		 * left an orphan, then in TIME_WAIT) or a RST (nothing left): this test's accept()
		 * is the guard's (coordguard.c is linked in), and refuses it. */
		close(sfd);
		close(cfd);
		sfd = cfd = -1;
		for (int rst = 0; rst < 2; rst++) {
			struct linger lg = { 1, 0 };
			cfd = socket(AF_INET, SOCK_STREAM, 0);
			CHECK(cfd >= 0 && connect(cfd, (struct sockaddr *)&local, sizeof(struct sockaddr_in)) == 0, "connect");
			CHECK(write(cfd, "q", 1) == 1, "write");
			if (rst)
				CHECK(setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0, "linger");
			close(cfd);
			cfd = -1;
			usleep(50000);
			errno = 0;
			sfd = accept(lfd, NULL, NULL);
			CHECK(sfd < 0 && errno == ECONNABORTED, "a client closed with %s before the accept is refused (fd %d, %s)",
			      rst ? "RST" : "FIN", sfd, strerror(errno));
			if (sfd >= 0)
				close(sfd);
			sfd = -1;
		}
	}
	peer.ss_family = AF_UNIX;
	CHECK(sdmtcp_guard_lookup_diag(&peer, &local, &p) == SDMTCP_PEER_UNKNOWN, "other families: no answer");
	if (sfd >= 0)
		close(sfd);
	if (cfd >= 0)
		close(cfd);
	if (lfd >= 0)
		close(lfd);
}

static void test_coordguard(void)
{
	struct sockaddr_storage ss;
	char key[64], table[] = "/tmp/sdmtcp-tcp-XXXXXX";
	int v6 = -1, fd;
	struct sdmtcp_peer p;
	FILE *f;

	set_v4(&ss, "127.0.0.1", 0x1234);
	CHECK(sdmtcp_guard_key(&ss, key, sizeof(key), &v6) == 0 && !v6 && !strcmp(key, "0100007F:1234"),
	      "IPv4 key '%s'", key);
	set_v6(&ss, "::ffff:127.0.0.1", 0x1234);
	CHECK(sdmtcp_guard_key(&ss, key, sizeof(key), &v6) == 0 && !v6 && !strcmp(key, "0100007F:1234"),
	      "IPv4-mapped key '%s' looks in tcp", key);
	set_v6(&ss, "::1", 0x1234);
	CHECK(sdmtcp_guard_key(&ss, key, sizeof(key), &v6) == 0 && v6 &&
		      !strcmp(key, "00000000000000000000000001000000:1234"),
	      "IPv6 key '%s'", key);
	ss.ss_family = AF_UNIX;
	CHECK(sdmtcp_guard_key(&ss, key, sizeof(key), &v6) < 0, "other families are not looked up");

	fd = mkstemp(table);
	CHECK(fd >= 0, "mkstemp");
	f = fdopen(fd, "w");
	if (f) {
		fputs("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
		      "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 123 1\n"
		      "   1: 0100007F:1234 0100007F:1F91 01 00000000:00000000 00:00000000 00000000  1003        0 455 1\n"
		      "   2: 0100007F:1234 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1002        0 456 1\n"
		      "   3: 0100007F:1235 0100007F:1F90 06 00000000:00000000 03:00001770 00000000     0        0 0 3\n",
		      f);
		fclose(f);
	}
	memset(&p, 0, sizeof(p));
	CHECK(sdmtcp_guard_lookup_table(table, "0100007F:1234", "0100007F:1F90", &p) == SDMTCP_PEER_FOUND &&
		      p.uid == 1002 && p.state == 1 && p.inode == 456,
	      "owner of a local socket, by both addresses: uid %lu state %u inode %lu", p.uid, p.state, p.inode);
	CHECK(sdmtcp_guard_lookup_table(table, "0100007F:1235", "0100007F:1F90", &p) == SDMTCP_PEER_FOUND &&
		      p.uid == 0 && p.state == 6 && p.inode == 0,
	      "a TIME_WAIT socket: uid %lu state %u inode %lu", p.uid, p.state, p.inode);
	p.local = 1;
	CHECK(sdmtcp_guard_decide(&p, 1001, 1) != NULL, "and refused");
	CHECK(sdmtcp_guard_lookup_table(table, "0A000001:1234", "0100007F:1F90", &p) == SDMTCP_PEER_GONE,
	      "a socket of another host");
	CHECK(sdmtcp_guard_lookup_table("/nonexistent", "0100007F:1234", "0100007F:1F90", &p) == SDMTCP_PEER_UNKNOWN,
	      "no table: unknown");
	unlink(table);

	CHECK(sdmtcp_guard_local_only("1"), "SDMTCP_GUARD_LOCAL=1: local only");
	CHECK(!sdmtcp_guard_local_only(NULL) && !sdmtcp_guard_local_only("") &&
		      !sdmtcp_guard_local_only("0") && !sdmtcp_guard_local_only("yes"),
	      "unset or any other value: not local only");

	set_v4(&ss, "127.0.0.1", 1);
	CHECK(sdmtcp_guard_is_local(&ss), "127.0.0.1 is local");
	set_v4(&ss, "127.3.4.5", 1);
	CHECK(sdmtcp_guard_is_local(&ss), "127.0.0.0/8 is local");
	set_v6(&ss, "::1", 1);
	CHECK(sdmtcp_guard_is_local(&ss), "::1 is local");
	set_v6(&ss, "::ffff:127.0.0.1", 1);
	CHECK(sdmtcp_guard_is_local(&ss), "v4-mapped loopback is local");
	set_v4(&ss, "192.0.2.77", 1);
	CHECK(!sdmtcp_guard_is_local(&ss), "a documentation address (TEST-NET-1) is not this host's");

	set_v4(&ss, "10.83.0.12", 5);
	CHECK(sdmtcp_guard_allowed("10.83.0.11,10.83.0.12", &ss), "in the list");
	CHECK(sdmtcp_guard_allowed("10.83.0.12", &ss), "alone in the list");
	CHECK(!sdmtcp_guard_allowed("10.83.0.11,10.83.0.13", &ss), "not in the list");
	CHECK(!sdmtcp_guard_allowed("10.83.0.1", &ss) && !sdmtcp_guard_allowed("10.83.0.120", &ss),
	      "no prefix match");
	CHECK(!sdmtcp_guard_allowed(NULL, &ss) && !sdmtcp_guard_allowed("", &ss) && !sdmtcp_guard_allowed(",,", &ss),
	      "no list: nobody");
	CHECK(!sdmtcp_guard_allowed("node2,garbage", &ss), "names are not addresses");
	set_v6(&ss, "::ffff:10.83.0.12", 5);
	CHECK(sdmtcp_guard_allowed("10.83.0.11,10.83.0.12", &ss), "v4-mapped client of a v4 entry");
	set_v6(&ss, "fd00::12", 5);
	CHECK(sdmtcp_guard_allowed("10.83.0.11,fd00::12", &ss) && !sdmtcp_guard_allowed("fd00::13", &ss),
	      "IPv6 entries");
	test_coordguard_decide();
	test_coordguard_diag();
}

/* Random input for every parser a user or sysadmin reaches: no crash, no out-of-bounds (under
 * valgrind), an answer of 0 or -1, and on -1 a message that names the input. The seed is
 * printed; SDMTCP_FUZZ_SEED=N replays a run. */
static void fuzz_parsers(void)
{
	static const char alphabet[] = "0123456789dhmsx-+. =%/eE,onfyNOFFdmtcp_intervalkeep\t";
	const char *seed_env = getenv("SDMTCP_FUZZ_SEED");
	unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10) : (unsigned)getpid();
	static const char *const keys[] = { "default", "keep", "min_interval", "lead_time", "max_runs",
					    "compress", "on_no_checkpoint", "checkpoint_dir", "colour" };
	int bad = 0;

	printf("fuzz seed %u (replay: SDMTCP_FUZZ_SEED=%u)\n", seed, seed);
	srand(seed);
	for (int i = 0; i < 20000; i++) {
		char in[48], err[SDMTCP_ERRLEN], line[128];
		struct sdmtcp_request r = SDMTCP_REQUEST_INIT;
		struct sdmtcp_config c;
		size_t n = (size_t)(rand() % (int)(sizeof(in) - 1));
		long v = -7;
		int rc;
		char *av[1];

		for (size_t k = 0; k < n; k++)
			in[k] = alphabet[rand() % (int)(sizeof(alphabet) - 1)];
		in[n] = '\0';

		err[0] = '\0';
		rc = sdmtcp_parse_duration(in, &v, err, sizeof(err));
		if (!(rc == 0 && v >= 0 && v <= SDMTCP_MAX_INTERVAL) && !(rc == -1 && err[0]))
			bad++;
		err[0] = '\0';
		rc = sdmtcp_option_interval(&r, in, err, sizeof(err));
		if (rc == -1 && !strstr(err, "--dmtcp-interval="))
			bad++;
		err[0] = '\0';
		rc = sdmtcp_option_lead(&r, in, err, sizeof(err));
		if (rc == -1 && !strstr(err, "--dmtcp-lead="))
			bad++;
		err[0] = '\0';
		rc = sdmtcp_option_continue(&r, in, err, sizeof(err));
		if (rc == -1 && !strstr(err, "--dmtcp-continue="))
			bad++;
		err[0] = '\0';
		rc = sdmtcp_option_dmtcp(&r, n ? in : NULL, err, sizeof(err));
		if (rc == -1 && !strstr(err, "--dmtcp="))
			bad++;

		snprintf(line, sizeof(line), "%s=%s", keys[rand() % 9], in);
		av[0] = line;
		sdmtcp_config_defaults(&c);
		err[0] = '\0';
		rc = sdmtcp_config_parse(&c, 1, av, err, sizeof(err));
		if (rc != 0 && (rc != -1 || !strstr(err, "plugstack.conf")))
			bad++;
		if (rc == 0) {
			struct sdmtcp_job j;
			err[0] = '\0';
			rc = sdmtcp_resolve(&c, &r, &j, err, sizeof(err));
			if (rc != 0 && (rc != -1 || !err[0]))
				bad++;
		}
	}
	CHECK(bad == 0, "fuzz: %d answers without a message naming the input (seed %u)", bad, seed);
}

int main(void)
{
	test_poll_ms();
	test_durations();
	test_options();
	test_config();
	test_resolve();
	test_ready();
	test_local_refusal();
	test_batch_coordinator();
	test_open_runtime_dir();
	test_remove_as();
	test_remove_retrying();
	test_bindir();
	test_executable_by();
	test_coordguard();
	fuzz_parsers();
	printf("%d passed, %d failed\n", checks - failures, failures);
	return failures ? 1 : 0;
}
