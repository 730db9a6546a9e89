/*
 * coordguard.c: slurm-dmtcp-coordguard.so, preloaded (LD_PRELOAD) into the job's
 * dmtcp_coordinator by the agent. DMTCP 5.0's coordinator has no authentication: any user on
 * the node could connect and kill or checkpoint someone else's job. This wraps accept() and
 * accept4() and keeps a connection only when its client is proven to be allowed
 * (sdmtcp_guard_decide): a socket of this host owned by the job's user, root's live socket,
 * or a client on another node of the step (SDMTCP_GUARD_ALLOW, numeric addresses; none with
 * SDMTCP_GUARD_LOCAL=1, a step on one node). The client's socket is looked up in the
 * kernel's socket table by the connection's addresses (NETLINK_SOCK_DIAG, one lookup, as ss
 * does; /proc/net/tcp or tcp6 where the kernel has no sock_diag). A client that closed
 * before the accept leaves a socket no process holds (uid 0, no inode) or none: refused,
 * since its owner is unknown. Each refusal is one line on the coordinator's stderr.
 *
 * It also hands the coordinator its listening socket (hand_over), so that a coordinator
 * without the guard never listens on the job's port.
 *
 * It runs in the coordinator, as the job's user; never in a Slurm process.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
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

int sdmtcp_guard_lookup_table(const char *table, const char *key, const char *rkey, struct sdmtcp_peer *p)
{
	char line[512], local[80], remote[80];
	unsigned long uid, inode;
	unsigned state;
	FILE *f = fopen(table, "re");

	if (!f)
		return p->found = SDMTCP_PEER_UNKNOWN;
	p->found = SDMTCP_PEER_GONE;
	while (fgets(line, sizeof(line), f)) {
		/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
		if (sscanf(line, "%*d: %79s %79s %x %*s %*s %*s %lu %*d %lu", local, remote, &state, &uid, &inode) == 5 &&
		    !strcmp(local, key) && !strcmp(remote, rkey)) {
			p->found = SDMTCP_PEER_FOUND;
			p->uid = uid;
			p->state = state;
			p->inode = inode;
			break;
		}
	}
	fclose(f);
	return p->found;
}

static void v4_of_mapped(const struct sockaddr_in6 *in6, struct sockaddr_in *in)
{
	memset(in, 0, sizeof(struct sockaddr_storage));
	in->sin_family = AF_INET;
	in->sin_port = in6->sin6_port;
	memcpy(&in->sin_addr, &in6->sin6_addr.s6_addr[12], 4);
}

int sdmtcp_guard_lookup_diag(const struct sockaddr_storage *peer, const struct sockaddr_storage *local,
			     struct sdmtcp_peer *p)
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
	ssize_t n;
	int fd;

	p->found = SDMTCP_PEER_UNKNOWN;
	if (peer->ss_family != local->ss_family ||
	    (peer->ss_family != AF_INET && peer->ss_family != AF_INET6))
		return p->found;
	if (peer->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)peer)->sin6_addr) &&
	    IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)local)->sin6_addr)) {
		/* An IPv4 client of an IPv6 listener: its socket is in the IPv4 table. */
		struct sockaddr_storage p4, l4;
		v4_of_mapped((const struct sockaddr_in6 *)peer, (struct sockaddr_in *)&p4);
		v4_of_mapped((const struct sockaddr_in6 *)local, (struct sockaddr_in *)&l4);
		return sdmtcp_guard_lookup_diag(&p4, &l4, p);
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
		const struct sockaddr_in *pa = (const struct sockaddr_in *)peer;
		const struct sockaddr_in *la = (const struct sockaddr_in *)local;
		q.req.id.idiag_sport = pa->sin_port;
		q.req.id.idiag_dport = la->sin_port;
		memcpy(q.req.id.idiag_src, &pa->sin_addr, 4);
		memcpy(q.req.id.idiag_dst, &la->sin_addr, 4);
	} else {
		const struct sockaddr_in6 *pa = (const struct sockaddr_in6 *)peer;
		const struct sockaddr_in6 *la = (const struct sockaddr_in6 *)local;
		q.req.id.idiag_sport = pa->sin6_port;
		q.req.id.idiag_dport = la->sin6_port;
		memcpy(q.req.id.idiag_src, &pa->sin6_addr, 16);
		memcpy(q.req.id.idiag_dst, &la->sin6_addr, 16);
	}
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return p->found;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (sendto(fd, &q, sizeof(q), 0, (struct sockaddr *)&kernel, sizeof(kernel)) != (ssize_t)sizeof(q)) {
		close(fd);
		return p->found;
	}
	n = recv(fd, &r, sizeof(r), 0);
	close(fd);
	if (n < (ssize_t)sizeof(struct nlmsghdr))
		return p->found;
	h = &r.nh;
	if (!NLMSG_OK(h, (size_t)n))
		return p->found;
	if (h->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = NLMSG_DATA(h);
		if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error == -ENOENT)
			p->found = SDMTCP_PEER_GONE; /* not in this host's table */
		return p->found;
	}
	if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
	    h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
		const struct inet_diag_msg *m = NLMSG_DATA(h);
		p->found = SDMTCP_PEER_FOUND;
		p->uid = m->idiag_uid;
		p->state = m->idiag_state;
		p->inode = m->idiag_inode;
	}
	return p->found;
}

int sdmtcp_guard_local_only(const char *env)
{
	return env && !strcmp(env, "1");
}

/* The IPv4 address of a v4 or v4-mapped address into *v4; 0 when it is neither. */
static int v4_of(const struct sockaddr_storage *a, struct in_addr *v4)
{
	if (a->ss_family == AF_INET) {
		*v4 = ((const struct sockaddr_in *)a)->sin_addr;
		return 1;
	}
	if (a->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)a)->sin6_addr)) {
		memcpy(v4, &((const struct sockaddr_in6 *)a)->sin6_addr.s6_addr[12], 4);
		return 1;
	}
	return 0;
}

/* Whether two addresses are the same host address (ports aside; v4-mapped = v4). */
static int same_addr(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	struct sockaddr_storage bs;
	struct in_addr a4, b4;

	memset(&bs, 0, sizeof(bs));
	if (b->sa_family == AF_INET)
		memcpy(&bs, b, sizeof(struct sockaddr_in));
	else if (b->sa_family == AF_INET6)
		memcpy(&bs, b, sizeof(struct sockaddr_in6));
	else
		return 0;
	if (v4_of(a, &a4) && v4_of(&bs, &b4))
		return a4.s_addr == b4.s_addr;
	return a->ss_family == AF_INET6 && bs.ss_family == AF_INET6 &&
	       !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &((struct sockaddr_in6 *)&bs)->sin6_addr, 16);
}

int sdmtcp_guard_is_local(const struct sockaddr_storage *a)
{
	struct ifaddrs *ifs, *i;
	struct in_addr v4;
	int local = 0;

	if (v4_of(a, &v4) && (ntohl(v4.s_addr) >> 24) == 127)
		return 1;
	if (a->ss_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)a)->sin6_addr))
		return 1;
	if (getifaddrs(&ifs) < 0)
		return 1; /* cannot tell: taken as local, so its socket must be found */
	for (i = ifs; i && !local; i = i->ifa_next)
		local = i->ifa_addr && same_addr(a, i->ifa_addr);
	freeifaddrs(ifs);
	return local;
}

int sdmtcp_guard_allowed(const char *list, const struct sockaddr_storage *a)
{
	char one[INET6_ADDRSTRLEN + 1];
	const char *s = list, *e;
	struct sockaddr_storage b;
	size_t n;

	while (s && *s) {
		e = strchr(s, ',');
		n = e ? (size_t)(e - s) : strlen(s);
		if (n > 0 && n < sizeof(one)) {
			memcpy(one, s, n);
			one[n] = '\0';
			memset(&b, 0, sizeof(b));
			if (inet_pton(AF_INET, one, &((struct sockaddr_in *)&b)->sin_addr) == 1)
				b.ss_family = AF_INET;
			else if (inet_pton(AF_INET6, one, &((struct sockaddr_in6 *)&b)->sin6_addr) == 1)
				b.ss_family = AF_INET6;
			if (b.ss_family != AF_UNSPEC && same_addr(a, (struct sockaddr *)&b))
				return 1;
		}
		s = e ? e + 1 : NULL;
	}
	return 0;
}

const char *sdmtcp_guard_decide(const struct sdmtcp_peer *p, unsigned long job_uid, int local_only)
{
	switch (p->found) {
	case SDMTCP_PEER_FOUND:
		if (p->uid == job_uid && job_uid != 0)
			return NULL; /* the job's user's own socket */
		if (p->uid != 0)
			return "the client's socket belongs to another user";
		/* uid 0 is root's socket, or one that no process holds any more (closed before it
		 * was accepted: an orphan, TIME_WAIT), whose owner the kernel no longer knows. */
		if (p->state == SDMTCP_TCP_ESTABLISHED && p->inode != 0)
			return NULL;
		return "the client's socket is no longer held by any process (closed before it was accepted): its owner is unknown";
	case SDMTCP_PEER_GONE:
		if (p->local)
			return "the client's socket is gone from this host (closed before it was accepted): its owner is unknown";
		if (local_only)
			return "a connection from another host (the step runs on this node only)";
		if (!p->allowed)
			return "a connection from a host that is not a node of the step";
		return NULL; /* another node of the step: its user cannot be known here */
	default:
		return "the kernel's socket table could not be read: the client's owner is unknown";
	}
}

/* Refusals are logged on the coordinator's error output (coordinator.out in the runtime
 * folder), at most this many: a client that tries again and again must not fill the disk. */
#define LOG_MAX 50
static int logged;

static void log_refusal(const struct sockaddr_storage *ss, const struct sdmtcp_peer *p, const char *why)
{
	char addr[INET6_ADDRSTRLEN + 16] = "", from[INET6_ADDRSTRLEN + 24] = "";
	unsigned port = 0;

	if (logged > LOG_MAX)
		return;
	if (++logged > LOG_MAX) {
		dprintf(2, "slurm-dmtcp-coordguard: more than %d connections refused; no more are logged\n", LOG_MAX);
		return;
	}
	if (ss && ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, addr, sizeof(addr));
		port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
	} else if (ss && ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, addr, sizeof(addr));
		port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	}
	if (addr[0])
		snprintf(from, sizeof(from), " from %s:%u", addr, port);
	if (p && p->found == SDMTCP_PEER_FOUND)
		dprintf(2, "slurm-dmtcp-coordguard: refused a connection%s: %s (uid %lu, TCP state %u, inode %lu)\n",
			from, why, p->uid, p->state, p->inode);
	else
		dprintf(2, "slurm-dmtcp-coordguard: refused a connection%s: %s\n", from, why);
}

/* What the kernel says of the client's socket: sock_diag, else /proc/net/tcp or tcp6. */
static void look_up(const struct sockaddr_storage *ss, const struct sockaddr_storage *me, struct sdmtcp_peer *p)
{
	char key[64], rkey[64];
	int v6, rv6;

	if (sdmtcp_guard_lookup_diag(ss, me, p) != SDMTCP_PEER_UNKNOWN)
		return;
	if (sdmtcp_guard_key(ss, key, sizeof(key), &v6) == 0 && sdmtcp_guard_key(me, rkey, sizeof(rkey), &rv6) == 0 &&
	    v6 == rv6)
		sdmtcp_guard_lookup_table(v6 ? "/proc/net/tcp6" : "/proc/net/tcp", key, rkey, p);
}

/* The accepted fd, or -1 (closed, errno ECONNABORTED) for a connection whose client is not
 * proven to be the job's user (or root's live socket), or another node of the step. */
static int admit(int fd)
{
	struct sockaddr_storage ss, me;
	socklen_t len = sizeof(ss), mlen = sizeof(me);
	struct sdmtcp_peer p;
	const char *why;

	if (fd < 0)
		return fd;
	memset(&p, 0, sizeof(p));
	memset(&ss, 0, sizeof(ss));
	p.found = SDMTCP_PEER_UNKNOWN;
	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0) {
		why = "the client reset the connection before it was accepted: its owner is unknown";
	} else if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) {
		why = "not a TCP connection";
	} else if (getsockname(fd, (struct sockaddr *)&me, &mlen) < 0) {
		why = "the connection has no local address";
	} else {
		look_up(&ss, &me, &p);
		if (p.found == SDMTCP_PEER_GONE) { /* only then does the address matter */
			p.local = sdmtcp_guard_is_local(&ss);
			p.allowed = sdmtcp_guard_allowed(getenv("SDMTCP_GUARD_ALLOW"), &ss);
		}
		why = sdmtcp_guard_decide(&p, (unsigned long)getuid(), sdmtcp_guard_local_only(getenv("SDMTCP_GUARD_LOCAL")));
	}
	if (!why)
		return fd;
	log_refusal(&ss, &p, why);
	close(fd);
	errno = ECONNABORTED;
	return -1;
}

/* The agent hands the coordinator its listening socket at SDMTCP_GUARD_HANDOFF_FD, where
 * dmtcp_coordinator does not look; this moves it to DMTCP's PROTECTED_COORD_FD (821) before
 * the coordinator's main(). A coordinator without the guard finds no fd 821 and binds the
 * port it is told (-p, the agent gives the job's port), which the socket it holds at fd 822
 * already has: it exits at once. So a missing or ignored preload never leaves a coordinator
 * listening unguarded, on the job's port or any other. Only in dmtcp_coordinator itself (a
 * shell in front of it must pass the socket on untouched). */
__attribute__((constructor)) static void hand_over(void)
{
	int on = 0;
	socklen_t len = sizeof(on);

	if (strcmp(program_invocation_short_name, "dmtcp_coordinator") != 0)
		return;
	if (fcntl(SDMTCP_GUARD_HANDOFF_FD, F_GETFD) < 0 || fcntl(SDMTCP_GUARD_COORD_FD, F_GETFD) >= 0)
		return;
	if (getsockopt(SDMTCP_GUARD_HANDOFF_FD, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) < 0 || !on)
		return;
	if (dup2(SDMTCP_GUARD_HANDOFF_FD, SDMTCP_GUARD_COORD_FD) == SDMTCP_GUARD_COORD_FD)
		close(SDMTCP_GUARD_HANDOFF_FD);
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
