/*
 * C unit tests of forklock.c without DMTCP: the source is included and DMTCP's lookup of
 * the next fork() gives a stand-in that looks at the lock from another descriptor, as the
 * agent would. The end to end proof, with real DMTCP under Slurm, is the fault campaign
 * (contrib/integration/campaign_test.go).
 */
#include "forklock.c"

#include "check.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

static char lockpath[PATH_MAX];
static pid_t fake_pid;
static int seen_shared = -1; /* in the stand-in: 1 when the lock was held shared */

/* lock_state: 2 free, 1 held shared (another shared lock is granted), 0 held exclusive. */
static int
lock_state(void)
{
  int fd = open(lockpath, O_RDONLY);
  int state = 0;
  if (fd < 0) {
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
    state = 2;
  } else if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
    state = 1;
  }
  close(fd);
  return state;
}

static pid_t
fake_fork(void)
{
  seen_shared = lock_state() == 1;
  errno = 0;
  return fake_pid;
}

void *
dmtcp_dlsym(void *handle, const char *symbol)
{
  (void)handle;
  return strcmp(symbol, "fork") == 0 ? (void *)fake_fork : NULL;
}

void
dmtcp_initialize(void)
{
}

static void *
unlock_later(void *arg)
{
  struct timespec ts = { 0, 50 * 1000 * 1000 };
  nanosleep(&ts, NULL);
  flock(*(int *)arg, LOCK_UN);
  return NULL;
}

static double
now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(void)
{
  char dir[] = "/tmp/forklock-test-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  snprintf(lockpath, sizeof lockpath, "%s/%s", dir, SDMTCP_FORK_LOCK);

  /* No runtime folder in the environment: DMTCP's fork alone. */
  unsetenv("SLURM_DMTCP_RUNDIR");
  fake_pid = 4242;
  seen_shared = -1;
  CHECK(fork() == 4242 && seen_shared == 0);

  /* A runtime folder without the lock (no agent made it): the same. */
  setenv("SLURM_DMTCP_RUNDIR", dir, 1);
  seen_shared = -1;
  CHECK(fork() == 4242 && seen_shared == 0);

  /* With the lock: held shared around DMTCP's fork, free after it, in parent and child. */
  int agent = open(lockpath, O_RDONLY | O_CREAT, 0600);
  CHECK(agent >= 0);
  seen_shared = -1;
  CHECK(fork() == 4242 && seen_shared == 1 && lock_state() == 2);
  fake_pid = 0;
  seen_shared = -1;
  CHECK(fork() == 0 && seen_shared == 1 && lock_state() == 2);
  fake_pid = 4243;
  seen_shared = -1;
  CHECK(vfork() == 4243 && seen_shared == 1 && lock_state() == 2);

  /* The agent holds it for a checkpoint: the fork waits until it lets go. */
  CHECK(flock(agent, LOCK_EX) == 0);
  pthread_t th;
  CHECK(pthread_create(&th, NULL, unlock_later, &agent) == 0);
  double start = now();
  seen_shared = -1;
  CHECK(fork() == 4243 && seen_shared == 1);
  CHECK(now() - start >= 0.045);
  pthread_join(th, NULL);
  CHECK(lock_state() == 2);

  /* A failed fork keeps its errno. */
  fake_pid = -1;
  CHECK(fork() == -1 && lock_state() == 2);

  close(agent);
  unlink(lockpath);
  rmdir(dir);
  return checks_done("forklock-test");
}
