/*
 * C unit tests of brk.c without DMTCP: the kernel's program break is moved above libc's
 * with the system call itself, as a restore by mtcp_restart leaves it, and the heap must
 * then grow again through sbrk() and malloc(). The end to end proof, with real DMTCP under
 * Slurm, is contrib/integration/heap_test.go.
 */
#include "brk.c"

#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int
main(void)
{
  /* Nothing to do when libc and the kernel agree. */
  CHECK((uintptr_t)sbrk(0) == (uintptr_t)syscall(SYS_brk, 0));
  CHECK(brk_after_restore() == 0);

  /* The kernel's break above libc's, as after a restore. */
  uintptr_t libc = (uintptr_t)sbrk(0);
  uintptr_t kernel = (uintptr_t)syscall(SYS_brk, libc + (1 << 20));
  CHECK(kernel == libc + (1 << 20));
  CHECK((uintptr_t)sbrk(0) == libc); /* libc does not know */
  errno = EINTR;
  CHECK(brk_after_restore() == 1);
  CHECK(errno == EINTR); /* errno kept for the program */
  CHECK((uintptr_t)sbrk(0) == kernel);
  CHECK(brk_after_restore() == 0);

  /* The heap grows from there: new memory that can be written. */
  char *p = sbrk(4096);
  CHECK(p == (char *)kernel);
  if (p != (void *)-1) {
    memset(p, 1, 4096);
    CHECK(p[4095] == 1);
  }

  /* The kernel's break below libc's is left alone (lowering libc's would hand out the
   * memory the kernel unmapped). Only the page taken above is given back meanwhile. */
  uintptr_t now = (uintptr_t)sbrk(0);
  CHECK(now == kernel + 4096);
  CHECK((uintptr_t)syscall(SYS_brk, kernel) == kernel);
  CHECK(brk_after_restore() == 0);
  CHECK((uintptr_t)sbrk(0) == now);
  CHECK((uintptr_t)syscall(SYS_brk, now) == now);

  /* malloc goes on working, small and large. */
  for (int i = 0; i < 64; i++) {
    size_t n = i % 2 ? 200000 + i : 2000 + i;
    char *q = malloc(n);
    CHECK(q != NULL);
    if (q != NULL) {
      memset(q, 2, n);
    }
    free(q);
  }

  return checks_done("brk-test");
}
