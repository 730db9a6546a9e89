/*
 * coordguard.c: slurm-dmtcp-coordguard.so, preloaded (LD_PRELOAD) into the job's
 * dmtcp_coordinator by the agent. DMTCP 5.0's coordinator has no authentication: any user on
 * the node could connect and kill or checkpoint someone else's job. This wraps accept() and
 * accept4(): a connection from a socket of this host that belongs to another user (its uid
 * in /proc/net/tcp or tcp6) is closed at once. Root's and the job user's own connections
 * pass; so do connections from other hosts, which this cannot attribute to a user, unless
 * SDMTCP_GUARD_LOCAL=1 (the agent sets it for a step on one node, where every process of the
 * job is on this host): then a connection from another host is closed too.
 *
 * It runs in the coordinator, as the job's user; never in a Slurm process.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coordguard.h"

int sdmtcp_guard_key(const struct sockaddr_storage *ss, char *key, size_t len, int *v6)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		/* /proc/net/tcp prints the address as the host-order value of the raw word. */
		snprintf(key, len, "%08X:%04X", (unsigned)in->sin_addr.s_addr, ntohs(in->sin_port));
		*v6 = 0;
		return 0;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		unsigned w[4];
		memcpy(w, in6->sin6_addr.s6_addr, sizeof(w));
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) { /* an IPv4 client: look in tcp */
			snprintf(key, len, "%08X:%04X", w[3], ntohs(in6->sin6_port));
			*v6 = 0;
			return 0;
		}
		snprintf(key, len, "%08X%08X%08X%08X:%04X", w[0], w[1], w[2], w[3],
			 ntohs(in6->sin6_port));
		*v6 = 1;
		return 0;
	}
	return -1;
}

long sdmtcp_guard_owner(const char *table, const char *key)
{
	char line[512], local[80];
	unsigned long uid;
	FILE *f = fopen(table, "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*d: %79s %*s %*s %*s %*s %*s %lu", local, &uid) == 2 &&
		    !strcmp(local, key)) {
			fclose(f);
			return (long)uid;
		}
	}
	fclose(f);
	return -1;
}

int sdmtcp_guard_local_only(const char *env)
{
	return env && !strcmp(env, "1");
}

/* The accepted fd, or -1 (closed, errno ECONNABORTED) for another local user's socket, or
 * for another host's in local-only mode. */
static int admit(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char key[64];
	int v6;
	long uid;

	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) < 0 ||
	    sdmtcp_guard_key(&ss, key, sizeof(key), &v6) < 0)
		return fd;
	uid = sdmtcp_guard_owner(v6 ? "/proc/net/tcp6" : "/proc/net/tcp", key);
	if ((uid > 0 && (unsigned long)uid != (unsigned long)getuid()) ||
	    (uid < 0 && sdmtcp_guard_local_only(getenv("SDMTCP_GUARD_LOCAL")))) {
		close(fd);
		errno = ECONNABORTED;
		return -1;
	}
	return fd;
}

__attribute__((visibility("default"))) int accept(int s, struct sockaddr *a, socklen_t *l)
{
	int (*real)(int, struct sockaddr *, socklen_t *) =
		(int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	return admit(real(s, a, l));
}

__attribute__((visibility("default"))) int accept4(int s, struct sockaddr *a, socklen_t *l, int flags)
{
	int (*real)(int, struct sockaddr *, socklen_t *, int) =
		(int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	return admit(real(s, a, l, flags));
}
