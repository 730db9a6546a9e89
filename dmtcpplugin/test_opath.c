/*
 * C unit tests of opath.c without DMTCP: the source is included and DMTCP's lookup of the
 * next definition gives counting stand-ins for DMTCP's open wrappers, which call libc's.
 * The end to end proof, with real DMTCP, Slurm and MPI programs, is
 * contrib/integration/mpi_test.go.
 */
#include "opath.c"

#include "check.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static int wrapped; /* wrapped: calls that reached "DMTCP's" wrapper */


static int
fake_openat(int dir, const char *path, int flags, ...)
{
  mode_t mode;
  MODE_ARG(flags, mode);
  wrapped++;
  return (int)syscall(SYS_openat, dir, path, flags, mode);
}

static int
fake_open(const char *path, int flags, ...)
{
  mode_t mode;
  MODE_ARG(flags, mode);
  wrapped++;
  return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

static int
fake_open_2(const char *path, int flags)
{
  wrapped++;
  return (int)syscall(SYS_openat, AT_FDCWD, path, flags, 0);
}

static int
fake_openat_2(int dir, const char *path, int flags)
{
  wrapped++;
  return (int)syscall(SYS_openat, dir, path, flags, 0);
}

void *
dmtcp_dlsym(void *handle, const char *symbol)
{
  (void)handle;
  if (strcmp(symbol, "openat") == 0 || strcmp(symbol, "openat64") == 0) {
    return (void *)fake_openat;
  }
  if (strcmp(symbol, "open") == 0 || strcmp(symbol, "open64") == 0) {
    return (void *)fake_open;
  }
  if (strcmp(symbol, "__open_2") == 0 || strcmp(symbol, "__open64_2") == 0) {
    return (void *)fake_open_2;
  }
  if (strcmp(symbol, "__openat_2") == 0 || strcmp(symbol, "__openat64_2") == 0) {
    return (void *)fake_openat_2;
  }
  return NULL;
}

void
dmtcp_initialize(void)
{
}

static int
is_link(int fd)
{
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISLNK(st.st_mode);
}

int
main(void)
{
  char dir[] = "/tmp/opath-test-XXXXXX";
  char file[64], link[64];
  int fd, dfd;

  CHECK(mkdtemp(dir) != NULL);
  snprintf(file, sizeof file, "%s/file", dir);
  snprintf(link, sizeof link, "%s/link", dir);

  /* A new file with its mode: DMTCP's wrapper, which gets the mode. */
  wrapped = 0;
  umask(022);
  fd = open(file, O_CREAT | O_WRONLY, 0640);
  CHECK(fd >= 0 && wrapped == 1);
  struct stat st;
  CHECK(fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0640);
  close(fd);
  CHECK(symlink("file", link) == 0);
  dfd = open(dir, O_PATH | O_DIRECTORY);
  CHECK(dfd >= 0 && wrapped == 2);

  /* The descriptor of a link itself: never seen by DMTCP, through every entry point. */
  wrapped = 0;
  fd = openat(dfd, "link", O_PATH | O_NOFOLLOW | O_CLOEXEC);
  CHECK(fd >= 0 && is_link(fd) && wrapped == 0);
  close(fd);
  fd = openat64(dfd, "link", O_PATH | O_NOFOLLOW);
  CHECK(fd >= 0 && is_link(fd) && wrapped == 0);
  close(fd);
  fd = open(link, O_PATH | O_NOFOLLOW);
  CHECK(fd >= 0 && is_link(fd) && wrapped == 0);
  close(fd);
  fd = open64(link, O_PATH | O_NOFOLLOW);
  CHECK(fd >= 0 && is_link(fd) && wrapped == 0);
  close(fd);
  fd = __open_2(link, O_PATH | O_NOFOLLOW);
  CHECK(fd >= 0 && is_link(fd) && wrapped == 0);
  close(fd);
  fd = __open64_2(link, O_PATH | O_NOFOLLOW);
  CHECK(fd >= 0 && is_link(fd) && wrapped == 0);
  close(fd);
  fd = __openat_2(dfd, "link", O_PATH | O_NOFOLLOW);
  CHECK(fd >= 0 && is_link(fd) && wrapped == 0);
  close(fd);
  fd = __openat64_2(dfd, "link", O_PATH | O_NOFOLLOW);
  CHECK(fd >= 0 && is_link(fd) && wrapped == 0);
  close(fd);

  /* Anything else goes to DMTCP's wrapper, once: O_PATH of a file or folder, a link
   * followed, an error, and paths under /proc (DMTCP's virtual process ids). */
  wrapped = 0;
  fd = openat(dfd, "file", O_PATH | O_NOFOLLOW);
  CHECK(fd >= 0 && !is_link(fd) && wrapped == 1);
  close(fd);
  fd = openat(AT_FDCWD, link, O_PATH);
  CHECK(fd >= 0 && !is_link(fd) && wrapped == 2);
  close(fd);
  fd = open(link, O_RDONLY);
  CHECK(fd >= 0 && !is_link(fd) && wrapped == 3);
  close(fd);
  errno = 0;
  CHECK(openat(dfd, "missing", O_PATH | O_NOFOLLOW) == -1 && errno == ENOENT && wrapped == 4);
  fd = open("/proc/self", O_PATH | O_NOFOLLOW);
  CHECK(fd >= 0 && wrapped == 5);
  close(fd);

  /* No descriptor is left open by the probes. */
  fd = open("/dev/null", O_RDONLY);
  CHECK(fd == dfd + 1);
  close(fd);
  close(dfd);
  unlink(link);
  unlink(file);
  rmdir(dir);
  return checks_done("opath-test");
}
