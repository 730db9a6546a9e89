/*
 * coordguard.h: the parts of coordguard.c that test_spank.c checks.
 */
#ifndef SDMTCP_COORDGUARD_H
#define SDMTCP_COORDGUARD_H

#include <stddef.h>
#include <sys/socket.h>

/* The /proc/net/tcp(6) "local_address" text of a peer address; *v6 says which table. */
int sdmtcp_guard_key(const struct sockaddr_storage *ss, char *key, size_t len, int *v6);
/* The uid owning the socket whose local address is key in table, or -1. */
long sdmtcp_guard_owner(const char *table, const char *key);
/* The uid owning the socket of this host at address peer connected to local (the kernel's
 * socket table through NETLINK_SOCK_DIAG): -1 when there is none (another host's), -2
 * when the kernel cannot say (no sock_diag). */
long sdmtcp_guard_owner_diag(const struct sockaddr_storage *peer, const struct sockaddr_storage *local);

/* Whether the value of SDMTCP_GUARD_LOCAL asks to refuse connections from other hosts. */
int sdmtcp_guard_local_only(const char *env);

#endif
