/*
 * Part of slurm-dmtcp-sigterm.so (the DMTCP plugin of the tasks): no fork while the agent
 * begins a checkpoint.
 *
 * DMTCP 5.0's fork() connects the child to the coordinator from the parent, before the
 * fork. When that happens as a checkpoint begins (the other processes already suspended),
 * the coordinator refuses the connection ("current computation is not in RUNNING state")
 * and DMTCP ends the forking process: exit 99. A shell loop or a Python driver that starts
 * a program every second died of it in about one run in five with checkpoints every 2 s.
 *
 * The agent holds an exclusive flock() on <runtime folder>/fork.lock from just before it
 * asks for a checkpoint until the computation runs again after it; fork() and vfork() here
 * hold a shared one around DMTCP's fork. A fork waits out a checkpoint being asked for, and
 * a checkpoint waits for the forks in flight (the agent bounds that wait). A thread waiting
 * for the lock is suspended by the checkpoint like any other and goes on after it. Without
 * the file (no agent's runtime folder in the environment, or a restore into another
 * folder) fork() is DMTCP's alone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/types.h>
#include <unistd.h>

#include "dmtcp.h"

#define EXPORT __attribute__((visibility("default")))

/* The agent's lock, in its runtime folder (SLURM_DMTCP_RUNDIR): agent/forklock.go. */
#define SDMTCP_FORK_LOCK "fork.lock"

/* forklock_take opens and share-locks the agent's lock file: its descriptor, or -1. */
static int
forklock_take(void)
{
  const char *dir = getenv("SLURM_DMTCP_RUNDIR");
  char path[PATH_MAX];
  if (dir == NULL || *dir == '\0' ||
      snprintf(path, sizeof(path), "%s/%s", dir, SDMTCP_FORK_LOCK) >= (int)sizeof(path)) {
    return -1;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return -1;
  }
  while (flock(fd, LOCK_SH) < 0) {
    if (errno != EINTR) {
      close(fd);
      return -1;
    }
  }
  return fd;
}

/* forklock_give releases it: the child closes its copy, the parent unlocks. */
static void
forklock_give(int fd, pid_t pid)
{
  if (fd < 0) {
    return;
  }
  if (pid != 0) {
    int saved = errno;
    (void)flock(fd, LOCK_UN);
    errno = saved;
  }
  close(fd);
}

EXPORT pid_t
fork(void)
{
  int fd = forklock_take();
  pid_t pid = NEXT_FNC(fork)();
  forklock_give(fd, pid);
  return pid;
}

/* DMTCP 5.0 runs vfork() as fork(); so does this. */
EXPORT pid_t
vfork(void)
{
  return fork();
}
