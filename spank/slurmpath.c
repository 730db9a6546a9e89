/*
 * slurmpath.c: where this node's Slurm commands are. The agent runs scontrol (the batch
 * step's restart count, the job's end time, a requeue) with a fixed PATH; on a site where
 * Slurm lives elsewhere (/opt/slurm/bin) it would not find it. Slurm's own commands sit in
 * bin/ beside the sbin/ of the slurmstepd that runs this plugin, so that folder goes first
 * in the agent's PATH when scontrol is there.
 *
 * Runs in slurmstepd (root), before the agent is forked: no user-controlled path is
 * followed (the path is slurmstepd's own executable).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "stepd.h"

int sdmtcp_bindir_of(const char *exe, char *out, size_t len)
{
	const char *end = strrchr(exe, '/');
	const char *up;
	int n;

	if (exe[0] != '/' || !end || end == exe)
		return -1;
	/* .../sbin/slurmstepd -> ... (the folder above the executable's folder) */
	for (up = end - 1; up > exe && *up != '/'; up--)
		;
	if (*up != '/')
		return -1;
	n = snprintf(out, len, "%.*s/bin", (int)(up - exe), exe);
	return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

int sdmtcp_slurm_bindir(char *out, size_t len)
{
	char exe[1024], scontrol[1100];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		return -1;
	exe[n] = '\0';
	if (sdmtcp_bindir_of(exe, out, len) < 0)
		return -1;
	snprintf(scontrol, sizeof(scontrol), "%s/scontrol", out);
	return access(scontrol, X_OK) == 0 ? 0 : -1;
}
