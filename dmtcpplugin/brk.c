/*
 * Part of slurm-dmtcp-sigterm.so (the DMTCP plugin of the tasks): libc's program break made
 * the kernel's again after a restore.
 *
 * A restored process runs in the address space of DMTCP's mtcp_restart, whose program break
 * the kernel placed at random (within 1 GiB of its data, with address space randomization).
 * mtcp_restart gives the kernel the process's saved break when it can, but the kernel never
 * moves a break below where it started: when mtcp_restart's started above the saved one,
 * the kernel keeps its own and libc keeps the saved one (glibc's sbrk(0) answers from memory,
 * it never asks the kernel). DMTCP also maps a PROT_NONE region right after the break at its
 * start, so that the heap cannot grow into it. libc's next sbrk(n) asks the kernel for a
 * break of saved + n; the kernel answers with its own, higher one, which glibc takes for
 * success, and malloc writes its new top chunk into DMTCP's PROT_NONE region: SIGSEGV in
 * sysmalloc. Any program that grows its heap after a restore died of it in many restores
 * (most, for a program built without PIE such as Debian 12's python3).
 *
 * After DMTCP's own restore of the heap (its processinfo plugin, which runs before this one
 * on a restart: this plugin is registered first), brk_after_restore sets libc's break to the
 * kernel's when the kernel's is higher. The heap then grows from the kernel's break (glibc's
 * malloc takes it as memory another sbrk user took), or the kernel refuses and malloc uses
 * mmap, as it did before the checkpoint.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

/* brk_after_restore makes libc's program break the kernel's when the kernel's is higher;
 * it returns 1 when it moved libc's, 0 when nothing was to be done, -1 when brk() failed. */
int
brk_after_restore(void)
{
  int saved = errno;
  uintptr_t kernel = (uintptr_t)syscall(SYS_brk, 0);
  uintptr_t libc = (uintptr_t)sbrk(0);
  int moved = 0;
  if (kernel > libc) {
    moved = brk((void *)kernel) == 0 ? 1 : -1;
  }
  errno = saved;
  return moved;
}
