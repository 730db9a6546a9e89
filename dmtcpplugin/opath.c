/*
 * Part of slurm-dmtcp-sigterm.so (the DMTCP plugin of the tasks): descriptors of symbolic
 * links are kept out of DMTCP's sight.
 *
 * openat(dir, name, O_PATH | O_NOFOLLOW) of a symbolic link gives a descriptor of the link
 * itself. DMTCP 5.0's open wrappers hand every new descriptor to its file plugin, which knows
 * regular files, directories, character and block devices and FIFOs, and asserts on anything
 * else ("Unimplemented file type", plugin/file/fileconnlist.cpp): the process dies. systemd's
 * libudev walks /sys that way (hwloc asks it about block devices while Open MPI starts), so
 * every Open MPI program died in MPI_Init under DMTCP.
 *
 * Such descriptors only name a link (no data, no offset, nothing to restore but the name) and
 * libudev closes them at once. So an open with O_PATH | O_NOFOLLOW is done here with the
 * system call itself; when the result is a symbolic link it is returned without DMTCP knowing
 * it (DMTCP's close, dup and checkpoint ignore descriptors they do not know), otherwise it is
 * closed and the open is done again through DMTCP's wrapper, which tracks it as before. Any
 * other open goes straight to DMTCP's wrapper. Paths under /proc/ always go through DMTCP's
 * wrapper: DMTCP maps its virtual process ids there.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dmtcp.h"

#define EXPORT __attribute__((visibility("default")))

/* glibc declares these only for _FORTIFY_SOURCE builds. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dir, const char *path, int flags);
int __openat64_2(int dir, const char *path, int flags);

/* The file mode argument is there only when the flags create a file. */
#define MODE_ARG(flags, mode)                                 \
  do {                                                        \
    (mode) = 0;                                               \
    if ((flags) & (O_CREAT | __O_TMPFILE)) {                  \
      va_list ap;                                             \
      va_start(ap, flags);                                    \
      (mode) = (mode_t)va_arg(ap, int);                       \
      va_end(ap);                                             \
    }                                                         \
  } while (0)

/* The descriptor of a symbolic link that (dir, path, flags) opens, or -1 (errno set) when
 * the open fails, or -2 when DMTCP's wrapper must do the open. */
static int
open_link(int dir, const char *path, int flags)
{
  if ((flags & (O_PATH | O_NOFOLLOW)) != (O_PATH | O_NOFOLLOW) || path == NULL ||
      strncmp(path, "/proc/", 6) == 0) {
    return -2;
  }
  int fd = (int)syscall(SYS_openat, dir, path, flags, 0);
  if (fd < 0) {
    return -2; /* DMTCP's wrapper gives the error, as it would have */
  }
  struct stat st;
  if (syscall(SYS_fstat, fd, &st) == 0 && S_ISLNK(st.st_mode)) {
    return fd;
  }
  syscall(SYS_close, fd);
  return -2;
}

EXPORT int
openat(int dir, const char *path, int flags, ...)
{
  mode_t mode;
  MODE_ARG(flags, mode);
  int fd = open_link(dir, path, flags);
  return fd != -2 ? fd : NEXT_FNC(openat)(dir, path, flags, mode);
}

EXPORT int
openat64(int dir, const char *path, int flags, ...)
{
  mode_t mode;
  MODE_ARG(flags, mode);
  int fd = open_link(dir, path, flags | O_LARGEFILE);
  return fd != -2 ? fd : NEXT_FNC(openat64)(dir, path, flags, mode);
}

EXPORT int
open(const char *path, int flags, ...)
{
  mode_t mode;
  MODE_ARG(flags, mode);
  int fd = open_link(AT_FDCWD, path, flags);
  return fd != -2 ? fd : NEXT_FNC(open)(path, flags, mode);
}

EXPORT int
open64(const char *path, int flags, ...)
{
  mode_t mode;
  MODE_ARG(flags, mode);
  int fd = open_link(AT_FDCWD, path, flags | O_LARGEFILE);
  return fd != -2 ? fd : NEXT_FNC(open64)(path, flags, mode);
}

/* The fortified entry points (_FORTIFY_SOURCE) of the same calls, without a mode. */
EXPORT int
__open_2(const char *path, int flags)
{
  int fd = open_link(AT_FDCWD, path, flags);
  return fd != -2 ? fd : NEXT_FNC(__open_2)(path, flags);
}

EXPORT int
__open64_2(const char *path, int flags)
{
  int fd = open_link(AT_FDCWD, path, flags | O_LARGEFILE);
  return fd != -2 ? fd : NEXT_FNC(__open64_2)(path, flags);
}

EXPORT int
__openat_2(int dir, const char *path, int flags)
{
  int fd = open_link(dir, path, flags);
  return fd != -2 ? fd : NEXT_FNC(__openat_2)(dir, path, flags);
}

EXPORT int
__openat64_2(int dir, const char *path, int flags)
{
  int fd = open_link(dir, path, flags | O_LARGEFILE);
  return fd != -2 ? fd : NEXT_FNC(__openat64_2)(dir, path, flags);
}
