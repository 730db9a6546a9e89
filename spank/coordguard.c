/*
 * coordguard.c: slurm-dmtcp-coordguard.so, preloaded (LD_PRELOAD) into the job's
 * dmtcp_coordinator by the agent. DMTCP 5.0's coordinator has no authentication: any user on
 * the node could connect and kill or checkpoint someone else's job. This wraps accept() and
 * accept4(): a connection from a socket of this host that belongs to another user is closed
 * at once. The owner of the connecting socket comes from the kernel's socket table, looked
 * up by the connection's addresses (NETLINK_SOCK_DIAG, one lookup, as ss does), or where
 * that is not available from /proc/net/tcp or tcp6 (a read of every TCP socket of the node,
 * milliseconds when it has thousands). Root's and the job user's own connections
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
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
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

static void v4_of_mapped(const struct sockaddr_in6 *in6, struct sockaddr_in *in)
{
	memset(in, 0, sizeof(struct sockaddr_storage));
	in->sin_family = AF_INET;
	in->sin_port = in6->sin6_port;
	memcpy(&in->sin_addr, &in6->sin6_addr.s6_addr[12], 4);
}

long sdmtcp_guard_owner_diag(const struct sockaddr_storage *peer, const struct sockaddr_storage *local)
{
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 req;
	} q;
	union {
		struct nlmsghdr nh;
		char buf[1024];
	} r;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct timeval tv = { 1, 0 };
	const struct nlmsghdr *h;
	long uid = -2;
	ssize_t n;
	int fd;

	if (peer->ss_family != local->ss_family ||
	    (peer->ss_family != AF_INET && peer->ss_family != AF_INET6))
		return -2;
	if (peer->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)peer)->sin6_addr) &&
	    IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)local)->sin6_addr)) {
		/* An IPv4 client of an IPv6 listener: its socket is in the IPv4 table. */
		struct sockaddr_storage p4, l4;
		v4_of_mapped((const struct sockaddr_in6 *)peer, (struct sockaddr_in *)&p4);
		v4_of_mapped((const struct sockaddr_in6 *)local, (struct sockaddr_in *)&l4);
		return sdmtcp_guard_owner_diag(&p4, &l4);
	}
	memset(&q, 0, sizeof(q));
	q.nh.nlmsg_len = sizeof(q);
	q.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	q.nh.nlmsg_flags = NLM_F_REQUEST;
	q.nh.nlmsg_seq = 1;
	q.req.sdiag_family = (unsigned char)peer->ss_family;
	q.req.sdiag_protocol = IPPROTO_TCP;
	q.req.idiag_states = ~0U;
	q.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	q.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	/* The connecting socket, as seen from its own side: its address is the peer's. */
	if (peer->ss_family == AF_INET) {
		const struct sockaddr_in *p = (const struct sockaddr_in *)peer;
		const struct sockaddr_in *l = (const struct sockaddr_in *)local;
		q.req.id.idiag_sport = p->sin_port;
		q.req.id.idiag_dport = l->sin_port;
		memcpy(q.req.id.idiag_src, &p->sin_addr, 4);
		memcpy(q.req.id.idiag_dst, &l->sin_addr, 4);
	} else {
		const struct sockaddr_in6 *p = (const struct sockaddr_in6 *)peer;
		const struct sockaddr_in6 *l = (const struct sockaddr_in6 *)local;
		q.req.id.idiag_sport = p->sin6_port;
		q.req.id.idiag_dport = l->sin6_port;
		memcpy(q.req.id.idiag_src, &p->sin6_addr, 16);
		memcpy(q.req.id.idiag_dst, &l->sin6_addr, 16);
	}
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -2;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (sendto(fd, &q, sizeof(q), 0, (struct sockaddr *)&kernel, sizeof(kernel)) != (ssize_t)sizeof(q)) {
		close(fd);
		return -2;
	}
	n = recv(fd, &r, sizeof(r), 0);
	close(fd);
	if (n < (ssize_t)sizeof(struct nlmsghdr))
		return -2;
	h = &r.nh;
	if (!NLMSG_OK(h, (size_t)n))
		return -2;
	if (h->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = NLMSG_DATA(h);
		if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error == -ENOENT)
			uid = -1; /* no such socket here: another host's */
		return uid;
	}
	if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
	    h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
		uid = (long)((const struct inet_diag_msg *)NLMSG_DATA(h))->idiag_uid;
	return uid;
}

int sdmtcp_guard_local_only(const char *env)
{
	return env && !strcmp(env, "1");
}

/* The accepted fd, or -1 (closed, errno ECONNABORTED) for another local user's socket, or
 * for another host's in local-only mode. */
static int admit(int fd)
{
	struct sockaddr_storage ss, me;
	socklen_t len = sizeof(ss), mlen = sizeof(me);
	char key[64];
	int v6;
	long uid;

	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) < 0 ||
	    sdmtcp_guard_key(&ss, key, sizeof(key), &v6) < 0)
		return fd;
	uid = getsockname(fd, (struct sockaddr *)&me, &mlen) == 0 ? sdmtcp_guard_owner_diag(&ss, &me) : -2;
	if (uid == -2)
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
