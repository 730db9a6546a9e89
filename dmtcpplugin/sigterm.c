/*
 * slurm-dmtcp-sigterm.so: a DMTCP plugin, loaded into every process of a --dmtcp
 * computation (dmtcp_launch --with-plugin; DMTCP preloads it into the exec'd children and it
 * is part of the restored images). See README.md beside this file.
 *
 * Slurm's SIGTERM (sent by slurmstepd, as root, to every process of the step) must not kill
 * the computation before the agent has checkpointed it; every other SIGTERM must do what the
 * application asked. So the kernel's disposition of SIGTERM is a handler of this plugin
 * (ignored while the application ignores SIGTERM), while the application sets and reads its
 * own disposition (kept here) through sigaction(), signal() and the like. The handler drops a
 * SIGTERM sent by root with kill() or tgkill() and delivers any other one with the
 * application's disposition.
 *
 * exec: the kernel resets a caught signal to its default, so the exec wrappers block SIGTERM
 * for the exec; the new image's plugin installs the handler, then unblocks it unless the
 * application had it blocked. SLURM_DMTCP_SIGTERM in the new image's environment says what
 * the application's disposition there is ("default" or "ignore", then ":blocked" or
 * ":unblocked"); the plugin removes it from the environment. The task launcher starts the
 * first process with SIGTERM ignored and SLURM_DMTCP_SIGTERM=default.
 */
#define _GNU_SOURCE
#include <alloca.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dmtcp.h"

#define ENV_NAME "SLURM_DMTCP_SIGTERM"

/* brk.c: libc's program break made the kernel's again after a restore. */
int brk_after_restore(void);

/* The kernel's flag for libc's own signal return code (not in glibc's headers). */
#if !defined(SA_RESTORER) && (defined(__x86_64__) || defined(__i386__) || defined(__aarch64__) || defined(__arm__))
#define SA_RESTORER 0x04000000
#endif
#define EXPORT __attribute__((visibility("default")))

/* The next definitions (DMTCP's wrappers, then libc's): one NEXT_FNC each, so that each is
 * looked up once, before the handler is installed, never inside it. */
static int
real_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
  return NEXT_FNC(sigaction)(sig, act, old);
}

static int
real_sigmask(int how, const sigset_t *set, sigset_t *old)
{
  return NEXT_FNC(pthread_sigmask)(how, set, old);
}

#define REAL(f) NEXT_FNC(f)

/* The application's disposition of SIGTERM. Writers hold wlock with SIGTERM blocked in their
 * thread; the handler reads a consistent copy through the sequence number (odd = writing). */
static struct sigaction app;
static unsigned seq;
static int wlock;
static int active; /* the kernel's disposition is on_term (from DMTCP_EVENT_INIT on) */

/* An exec wrapper in progress in this thread: whether SIGTERM was blocked before it. */
static __thread int exec_depth;
static __thread int exec_was_blocked;

static void on_term(int sig, siginfo_t *si, void *uc);

static int
term_blocked(void)
{
  sigset_t cur;

  real_sigmask(SIG_BLOCK, NULL, &cur);
  return sigismember(&cur, SIGTERM) == 1;
}

static void
mask_term(int how)
{
  sigset_t s;

  sigemptyset(&s);
  sigaddset(&s, SIGTERM);
  real_sigmask(how, &s, NULL);
}

static void
read_app(struct sigaction *out)
{
  unsigned s;

  do {
    s = __atomic_load_n(&seq, __ATOMIC_ACQUIRE);
    *out = app;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
  } while ((s & 1) || s != __atomic_load_n(&seq, __ATOMIC_RELAXED));
}

/* The kernel's action for an application disposition a: ignored when the application ignores
 * SIGTERM (Slurm's too, then); else our handler, with the application's mask and flags when
 * it has a handler of its own, restarted system calls otherwise. */
static void
install(const struct sigaction *a)
{
  struct sigaction k;

  memset(&k, 0, sizeof k);
  if (a->sa_handler == SIG_IGN) {
    k.sa_handler = SIG_IGN;
    real_sigaction(SIGTERM, &k, NULL);
    return;
  }
  k.sa_sigaction = on_term;
  k.sa_flags = SA_SIGINFO | SA_RESTART;
  if (a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN) {
    k.sa_mask = a->sa_mask;
    k.sa_flags = SA_SIGINFO | (a->sa_flags & (SA_RESTART | SA_ONSTACK | SA_NODEFER));
  }
  real_sigaction(SIGTERM, &k, NULL);
}

/* Sets the application's disposition to *a (when a), returns the previous one in *old. */
static void
set_app(const struct sigaction *a, struct sigaction *old)
{
  sigset_t all, saved;

  sigfillset(&all);
  real_sigmask(SIG_BLOCK, &all, &saved);
  while (__atomic_exchange_n(&wlock, 1, __ATOMIC_ACQUIRE)) {
  }
  if (old != NULL) {
    *old = app;
  }
  if (a != NULL) {
    struct sigaction next = *a;
#ifdef SA_RESTORER
    struct sigaction k;

    /* What libc would have reported: its own restorer, as set along with our handler. */
    install(a);
    real_sigaction(SIGTERM, NULL, &k);
    next.sa_flags = (next.sa_flags & ~SA_RESTORER) | (k.sa_flags & SA_RESTORER);
    next.sa_restorer = k.sa_restorer;
#else
    install(a);
#endif
    __atomic_store_n(&seq, seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    app = next;
    __atomic_store_n(&seq, seq + 1, __ATOMIC_RELEASE);
  }
  __atomic_store_n(&wlock, 0, __ATOMIC_RELEASE);
  real_sigmask(SIG_SETMASK, &saved, NULL);
}

static void
on_term(int sig, siginfo_t *si, void *uc)
{
  struct sigaction a;

  if (si != NULL && si->si_uid == 0 && (si->si_code == SI_USER || si->si_code == SI_TKILL)) {
    return; /* Slurm's: the agent turns it into a checkpoint */
  }
  read_app(&a);
  if (a.sa_handler == SIG_IGN) {
    return;
  }
  if (a.sa_handler == SIG_DFL) {
    struct sigaction dfl;

    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    real_sigaction(SIGTERM, &dfl, NULL);
    raise(SIGTERM);
    mask_term(SIG_UNBLOCK);
    _exit(128 + SIGTERM); /* not reached: the unblocked SIGTERM ends the process */
  }
  if (a.sa_flags & SA_RESETHAND) {
    struct sigaction dfl;

    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    set_app(&dfl, NULL);
  }
  if (a.sa_flags & SA_SIGINFO) {
    a.sa_sigaction(sig, si, uc);
  } else {
    a.sa_handler(sig);
  }
}

/* DMTCP_EVENT_INIT, in libdmtcp's constructor before main: the application's disposition is
 * what SLURM_DMTCP_SIGTERM says (else what the kernel has), then our handler takes over. */
static void
take_over(void)
{
  struct sigaction k;
  const char *env = getenv(ENV_NAME);
  const char *mask = NULL;

  real_sigaction(SIGTERM, NULL, &k);
  if (env != NULL && (k.sa_handler == SIG_IGN || k.sa_handler == SIG_DFL)) {
    if (env != NULL && strncmp(env, "default", 7) == 0) {
      k.sa_handler = SIG_DFL;
      mask = env + 7;
    } else if (env != NULL && strncmp(env, "ignore", 6) == 0) {
      k.sa_handler = SIG_IGN;
      mask = env + 6;
    }
  }
  set_app(&k, NULL);
  active = 1;
  if (mask != NULL && strcmp(mask, ":unblocked") == 0) {
    mask_term(SIG_UNBLOCK);
  } else if (mask != NULL && strcmp(mask, ":blocked") == 0) {
    mask_term(SIG_BLOCK);
  }
  unsetenv(ENV_NAME);
}

/* DMTCP_EVENT_PRE_EXEC: tell the new image the application's disposition and mask. */
static void
pre_exec(DmtcpEventData_t *data)
{
  static __thread char entry[64];
  struct sigaction a;
  size_t i, n = 0;
  int blocked = exec_depth > 0 ? exec_was_blocked : term_blocked();

  if (!active) {
    return;
  }
  read_app(&a);
  strcpy(entry, ENV_NAME "=");
  strcat(entry, a.sa_handler == SIG_IGN ? "ignore" : "default");
  strcat(entry, blocked ? ":blocked" : ":unblocked");
  for (i = 0; data->preExec.envp[i] != NULL; i++) {
    if (strncmp(data->preExec.envp[i], ENV_NAME "=", sizeof ENV_NAME) == 0) {
      data->preExec.envp[i] = entry;
      return;
    }
    n = i + 1;
  }
  if (n + 1 < data->preExec.maxEnv) {
    data->preExec.envp[n] = entry;
    data->preExec.envp[n + 1] = NULL;
  }
}

static void
event_hook(DmtcpEvent_t event, DmtcpEventData_t *data)
{
  switch (event) {
  case DMTCP_EVENT_INIT:
    take_over();
    break;
  case DMTCP_EVENT_PRE_EXEC:
    pre_exec(data);
    break;
  case DMTCP_EVENT_ATFORK_CHILD:
    wlock = 0; /* the child has one thread: no writer holds it */
    break;
  case DMTCP_EVENT_RESTART:
    (void)brk_after_restore(); /* brk.c */
    break;
  default:
    break;
  }
}

static DmtcpPluginDescriptor_t sigterm_plugin = {
  DMTCP_PLUGIN_API_VERSION,
  DMTCP_PACKAGE_VERSION,
  "slurm-dmtcp-sigterm",
  "slurm-dmtcp",
  "",
  "SIGTERM: Slurm's is dropped, the application's is delivered as it asked",
  event_hook
};

EXPORT DMTCP_DECL_PLUGIN(sigterm_plugin);

/* ---- the application's view of SIGTERM's disposition ---- */

/* Whether act resets DMTCP's checkpoint signal to its default. Python's subprocess does that
 * in every child before its exec, for each signal with a handler; DMTCP keeps its handler,
 * as it must, and prints a warning into the job's error output for every program started,
 * though the exec resets the handler anyway. Such a reset is dropped here without a word;
 * an application's own handler of that signal still gets DMTCP's warning. */
static int
resets_ckpt_signal(int sig, const struct sigaction *act)
{
  return act != NULL && !(act->sa_flags & SA_SIGINFO) && act->sa_handler == SIG_DFL &&
         sig == dmtcp_get_ckpt_signal();
}

EXPORT int
sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
  if (resets_ckpt_signal(sig, act)) {
    return real_sigaction(sig, NULL, old);
  }
  if (sig != SIGTERM || !active) {
    return real_sigaction(sig, act, old);
  }
  set_app(act, old);
  return 0;
}

/* siginterrupt(SIGTERM, 1) was called: signal() no longer asks for restarted calls. */
static int term_interrupts;

static sighandler_t
set_handler(sighandler_t h, int flags, int hold)
{
  struct sigaction a, old;

  memset(&a, 0, sizeof a);
  a.sa_handler = h;
  a.sa_flags = flags;
  if (hold) {
    sigaddset(&a.sa_mask, SIGTERM);
  }
  set_app(&a, &old);
  return old.sa_handler;
}

/* signal() of glibc: BSD semantics (handler kept, calls restarted, SIGTERM held meanwhile). */
EXPORT sighandler_t
signal(int sig, sighandler_t h)
{
  if (sig != SIGTERM || !active || h == SIG_ERR) {
    return REAL(signal)(sig, h);
  }
  return set_handler(h, term_interrupts ? 0 : SA_RESTART, 1);
}

EXPORT sighandler_t
bsd_signal(int sig, sighandler_t h)
{
  return signal(sig, h);
}

/* signal() of a program built for strict ISO C / System V: one-shot, not held. */
EXPORT sighandler_t
__sysv_signal(int sig, sighandler_t h)
{
  if (sig != SIGTERM || !active || h == SIG_ERR) {
    return REAL(__sysv_signal)(sig, h);
  }
  return set_handler(h, SA_RESETHAND | SA_NODEFER, 0);
}

EXPORT sighandler_t
sysv_signal(int sig, sighandler_t h)
{
  return __sysv_signal(sig, h);
}

/* The System V and BSD calls below are deprecated in glibc, still used by old programs. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

EXPORT sighandler_t
sigset(int sig, sighandler_t h)
{
  sighandler_t old;
  int was;

  if (sig != SIGTERM || !active || h == SIG_ERR) {
    return REAL(sigset)(sig, h);
  }
  was = term_blocked();
  if (h == SIG_HOLD) {
    struct sigaction cur;

    set_app(NULL, &cur);
    mask_term(SIG_BLOCK);
    return was ? SIG_HOLD : cur.sa_handler;
  }
  old = set_handler(h, 0, 0);
  mask_term(SIG_UNBLOCK);
  return was ? SIG_HOLD : old;
}

EXPORT int
sigignore(int sig)
{
  if (sig != SIGTERM || !active) {
    return REAL(sigignore)(sig);
  }
  set_handler(SIG_IGN, 0, 0);
  return 0;
}

EXPORT int
siginterrupt(int sig, int flag)
{
  struct sigaction a;

  if (sig != SIGTERM || !active) {
    return REAL(siginterrupt)(sig, flag);
  }
  term_interrupts = flag != 0;
  set_app(NULL, &a);
  if (flag) {
    a.sa_flags &= ~SA_RESTART;
  } else {
    a.sa_flags |= SA_RESTART;
  }
  set_app(&a, NULL);
  return 0;
}

#pragma GCC diagnostic pop

/* ---- exec: SIGTERM blocked across it, unblocked again if it fails ---- */

static void
exec_begin(void)
{
  if (exec_depth++ == 0) {
    exec_was_blocked = term_blocked();
    if (active && !exec_was_blocked) {
      mask_term(SIG_BLOCK);
    }
  }
}

static int
exec_failed(int ret)
{
  int e = errno;

  if (--exec_depth == 0 && active && !exec_was_blocked) {
    mask_term(SIG_UNBLOCK);
  }
  errno = e;
  return ret;
}

EXPORT int
execve(const char *path, char *const argv[], char *const envp[])
{
  exec_begin();
  return exec_failed(REAL(execve)(path, argv, envp));
}

EXPORT int
execvpe(const char *file, char *const argv[], char *const envp[])
{
  exec_begin();
  return exec_failed(REAL(execvpe)(file, argv, envp));
}

EXPORT int
execv(const char *path, char *const argv[])
{
  return execve(path, argv, environ);
}

EXPORT int
execvp(const char *file, char *const argv[])
{
  return execvpe(file, argv, environ);
}

/* execl, execlp, execle: their arguments as an argv (and the envp after the NULL for
 * execle), then execve or execvpe (search). */
static int
exec_va(const char *file, int search, int with_env, const char *arg, va_list ap)
{
  size_t n = 1;
  char **argv, **envp = environ;
  va_list c;

  va_copy(c, ap);
  while (va_arg(c, char *) != NULL) {
    n++;
  }
  va_end(c);
  argv = alloca((n + 1) * sizeof(char *));
  argv[0] = (char *)arg;
  for (size_t i = 1; i <= n; i++) {
    argv[i] = va_arg(ap, char *);
  }
  if (with_env) {
    envp = va_arg(ap, char **);
  }
  return search ? execvpe(file, argv, envp) : execve(file, argv, envp);
}

EXPORT int
execl(const char *path, const char *arg, ...)
{
  va_list ap;
  int r;

  va_start(ap, arg);
  r = exec_va(path, 0, 0, arg, ap);
  va_end(ap);
  return r;
}

EXPORT int
execlp(const char *file, const char *arg, ...)
{
  va_list ap;
  int r;

  va_start(ap, arg);
  r = exec_va(file, 1, 0, arg, ap);
  va_end(ap);
  return r;
}

EXPORT int
execle(const char *path, const char *arg, ...)
{
  va_list ap;
  int r;

  va_start(ap, arg);
  r = exec_va(path, 0, 1, arg, ap);
  va_end(ap);
  return r;
}
