/*
 * coordguard.h: the parts of coordguard.c that test_spank.c checks.
 */
#ifndef SDMTCP_COORDGUARD_H
#define SDMTCP_COORDGUARD_H

#include <stddef.h>
#include <sys/socket.h>

/* Where the agent hands the coordinator its listening socket, and where the guard moves it
 * (DMTCP's PROTECTED_COORD_FD). coordinator/coordinator.go has the same numbers. */
#define SDMTCP_GUARD_HANDOFF_FD 822
#define SDMTCP_GUARD_COORD_FD 821

/* TCP_ESTABLISHED, as the kernel numbers TCP states (sock_diag, /proc/net/tcp). */
#define SDMTCP_TCP_ESTABLISHED 1

/* What the kernel's socket table says of the client's end of a connection. */
enum { SDMTCP_PEER_UNKNOWN, SDMTCP_PEER_GONE, SDMTCP_PEER_FOUND };
struct sdmtcp_peer {
	int found;           /* UNKNOWN: the table could not be read; GONE: not in it */
	unsigned long uid;   /* its owner; 0 also for a socket no process holds any more */
	unsigned state;      /* TCP state */
	unsigned long inode; /* 0 for a socket no process holds (orphan, TIME_WAIT) */
	int local;           /* its address is loopback or one of this host's */
	int allowed;         /* its address is one of the step's nodes' (SDMTCP_GUARD_ALLOW) */
};

/* Whether to accept a connection of a coordinator run by job_uid: NULL to accept, else the
 * reason to refuse it. Accepted: the job's user's socket; root's live socket (ESTABLISHED,
 * with an inode); a client not on this host whose address is one of the step's nodes, unless
 * local_only. Anything else, and anything unproven, is refused. */
const char *sdmtcp_guard_decide(const struct sdmtcp_peer *p, unsigned long job_uid, int local_only);

/* The /proc/net/tcp(6) "local_address" text of a peer address; *v6 says which table. */
int sdmtcp_guard_key(const struct sockaddr_storage *ss, char *key, size_t len, int *v6);
/* Fills p (found, uid, state, inode) from the line of table whose local address is key and
 * remote address rkey; returns p->found. */
int sdmtcp_guard_lookup_table(const char *table, const char *key, const char *rkey, struct sdmtcp_peer *p);
/* The same through NETLINK_SOCK_DIAG, for the socket of this host at address peer connected
 * to local; SDMTCP_PEER_UNKNOWN when the kernel cannot say (no sock_diag). */
int sdmtcp_guard_lookup_diag(const struct sockaddr_storage *peer, const struct sockaddr_storage *local,
			     struct sdmtcp_peer *p);

/* Whether an address is loopback or one of this host's interfaces' (1 when that cannot be
 * read: its socket must then be found). */
int sdmtcp_guard_is_local(const struct sockaddr_storage *a);
/* Whether an address is in list, numeric addresses separated by commas (NULL: none). */
int sdmtcp_guard_allowed(const char *list, const struct sockaddr_storage *a);

/* Whether the value of SDMTCP_GUARD_LOCAL asks to refuse connections from other hosts. */
int sdmtcp_guard_local_only(const char *env);

#endif
