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

/* Whether the value of SDMTCP_GUARD_LOCAL asks to refuse connections from other hosts. */
int sdmtcp_guard_local_only(const char *env);

#endif
