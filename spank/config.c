/*
 * config.c: the plugstack.conf arguments (key=value), parsed here and nowhere else.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sdmtcp.h"

void sdmtcp_config_defaults(struct sdmtcp_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->agent, sizeof(c->agent), "%s/slurm-dmtcp-agent", SDMTCP_LIBEXECDIR);
	snprintf(c->exec, sizeof(c->exec), "%s/slurm-dmtcp-exec", SDMTCP_LIBEXECDIR);
	snprintf(c->checkpoint_dir, sizeof(c->checkpoint_dir), "%%h/.slurm-dmtcp/%%j");
	snprintf(c->runtime_dir, sizeof(c->runtime_dir), "/tmp");
	c->default_on = 0;
	c->allow_opt_out = 1;
	c->min_interval = 60;
	c->default_interval = 3600;
	c->keep = 2;
	c->agent_timeout = 30;
	c->compress = 0;
	c->lead_time = 300;
	c->max_lead_time = 3600;
	c->max_runs = 10;
	c->fail_without_checkpoint = 0;
}

/* Case-insensitive on/off words. Returns 0 and sets *out, or -1. */
int sdmtcp_parse_bool(const char *s, int *out)
{
	static const char *const on[] = { "on", "yes", "true", "1", NULL };
	static const char *const off[] = { "off", "no", "false", "0", NULL };
	for (int i = 0; on[i]; i++)
		if (!strcasecmp(s, on[i])) {
			*out = 1;
			return 0;
		}
	for (int i = 0; off[i]; i++)
		if (!strcasecmp(s, off[i])) {
			*out = 0;
			return 0;
		}
	return -1;
}

#define DURATION_FORMS "seconds (900) or a Go-style duration (90s, 30m, 1h30m, 2d)"

/*
 * Seconds ("900") or a sequence of <integer><unit> with units d, h, m, s ("1h30m").
 * Bounded by SDMTCP_MAX_INTERVAL; no sign, no fractions, no exponent.
 */
int sdmtcp_parse_duration(const char *s, long *out, char *err, size_t errlen)
{
	const char *p = s;
	long total = 0;
	int units = 0;

	if (!s || !*s) {
		snprintf(err, errlen, "empty value; expected %s", DURATION_FORMS);
		return -1;
	}
	while (*p) {
		long n = 0, mult;
		const char *start = p;
		while (*p >= '0' && *p <= '9') {
			if (n > (SDMTCP_MAX_INTERVAL + 9) / 10)
				goto too_big;
			n = n * 10 + (*p - '0');
			p++;
		}
		if (p == start)
			goto bad;
		switch (*p) {
		case '\0':
			if (units)
				goto bad; /* "1h30" is ambiguous */
			mult = 1;
			break;
		case 's': mult = 1; p++; break;
		case 'm': mult = 60; p++; break;
		case 'h': mult = 3600; p++; break;
		case 'd': mult = 86400; p++; break;
		default:
			goto bad;
		}
		units++;
		if (n > SDMTCP_MAX_INTERVAL / mult || total + n * mult > SDMTCP_MAX_INTERVAL)
			goto too_big;
		total += n * mult;
	}
	*out = total;
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not a duration; expected %s", s, DURATION_FORMS);
	return -1;
too_big:
	snprintf(err, errlen, "'%s' is longer than the maximum of %ld seconds (366d)", s,
		 (long)SDMTCP_MAX_INTERVAL);
	return -1;
}

enum kind { K_PATH, K_TEMPLATE, K_BOOL, K_DURATION, K_COUNT, K_NOCKPT };

struct key {
	const char *name;
	enum kind kind;
	size_t off;
	const char *forms;
};

#define OFF(f) offsetof(struct sdmtcp_config, f)
static const struct key keys[] = {
	{ "dmtcp_prefix", K_PATH, OFF(dmtcp_prefix), "an absolute folder" },
	{ "agent", K_PATH, OFF(agent), "an absolute path" },
	{ "exec", K_PATH, OFF(exec), "an absolute path" },
	{ "checkpoint_dir", K_TEMPLATE, OFF(checkpoint_dir),
	  "an absolute path or one under %h, with %u %U %j %h %%" },
	{ "runtime_dir", K_PATH, OFF(runtime_dir), "an absolute folder" },
	{ "default", K_BOOL, OFF(default_on), "on or off" },
	{ "allow_opt_out", K_BOOL, OFF(allow_opt_out), "yes or no" },
	{ "min_interval", K_DURATION, OFF(min_interval), DURATION_FORMS },
	{ "default_interval", K_DURATION, OFF(default_interval), DURATION_FORMS },
	{ "keep", K_COUNT, OFF(keep), "a whole number from 1 to 100" },
	{ "agent_timeout", K_DURATION, OFF(agent_timeout), DURATION_FORMS },
	{ "compress", K_BOOL, OFF(compress), "on or off" },
	{ "lead_time", K_DURATION, OFF(lead_time), DURATION_FORMS },
	{ "max_lead_time", K_DURATION, OFF(max_lead_time), DURATION_FORMS },
	{ "max_runs", K_COUNT, OFF(max_runs), "a whole number from 1 to 100" },
	{ "on_no_checkpoint", K_NOCKPT, OFF(fail_without_checkpoint), "restart or fail" },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static int set_key(struct sdmtcp_config *c, const struct key *k, const char *val, char *err,
		   size_t errlen)
{
	char *field = (char *)c + k->off;
	char sub[SDMTCP_ERRLEN];
	char *end;
	long n;

	switch (k->kind) {
	case K_PATH:
	case K_TEMPLATE:
		if (!(val[0] == '/' || (k->kind == K_TEMPLATE && !strncmp(val, "%h", 2))))
			goto bad;
		if (strlen(val) >= 1024 || strpbrk(val, "\n\r"))
			goto bad;
		memcpy(field, val, strlen(val) + 1);
		return 0;
	case K_BOOL:
		if (sdmtcp_parse_bool(val, (int *)field) < 0)
			goto bad;
		return 0;
	case K_NOCKPT:
		if (strcmp(val, "restart") && strcmp(val, "fail"))
			goto bad;
		*(int *)field = !strcmp(val, "fail");
		return 0;
	case K_DURATION:
		if (sdmtcp_parse_duration(val, (long *)field, sub, sizeof(sub)) < 0) {
			snprintf(err, errlen, "plugstack.conf argument %s=%.200s: %.1500s", k->name, val, sub);
			return -1;
		}
		if (!strcmp(k->name, "agent_timeout") && *(long *)field < 1)
			goto bad;
		return 0;
	case K_COUNT:
		errno = 0;
		n = strtol(val, &end, 10);
		if (errno || end == val || *end || n < 1 || n > 100)
			goto bad;
		*(long *)field = n;
		return 0;
	}
bad:
	snprintf(err, errlen, "plugstack.conf argument %s=%s: expected %s", k->name, val, k->forms);
	return -1;
}

int sdmtcp_config_parse(struct sdmtcp_config *c, int ac, char **av, char *err, size_t errlen)
{
	for (int i = 0; i < ac; i++) {
		const char *eq = strchr(av[i], '=');
		size_t klen;
		size_t j;

		if (!eq || eq == av[i]) {
			snprintf(err, errlen, "plugstack.conf argument '%s' is not key=value", av[i]);
			return -1;
		}
		klen = (size_t)(eq - av[i]);
		for (j = 0; j < NKEYS; j++)
			if (strlen(keys[j].name) == klen && !strncmp(keys[j].name, av[i], klen))
				break;
		if (j == NKEYS) {
			snprintf(err, errlen,
				 "plugstack.conf argument '%.*s' is unknown; known keys: dmtcp_prefix "
				 "agent exec checkpoint_dir runtime_dir default allow_opt_out "
				 "min_interval default_interval keep agent_timeout compress lead_time "
				 "max_lead_time max_runs on_no_checkpoint",
				 (int)klen, av[i]);
			return -1;
		}
		if (set_key(c, &keys[j], eq + 1, err, errlen) < 0)
			return -1;
	}
	if (c->default_interval && c->default_interval < c->min_interval) {
		snprintf(err, errlen,
			 "plugstack.conf: default_interval (%lds) is shorter than min_interval (%lds)",
			 c->default_interval, c->min_interval);
		return -1;
	}
	if (c->lead_time > c->max_lead_time) {
		snprintf(err, errlen,
			 "plugstack.conf: lead_time (%lds) is longer than max_lead_time (%lds)",
			 c->lead_time, c->max_lead_time);
		return -1;
	}
	return 0;
}
