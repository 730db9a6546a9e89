/*
 * C unit tests of slurm-dmtcp-sigterm.so's logic, without DMTCP: the plugin's source is
 * included, DMTCP's lookup of the next definition is dlsym(RTLD_NEXT) (libc's). The end to
 * end proof, with real DMTCP and Slurm, is contrib/integration/signals_test.go.
 */
#include "sigterm.c"
#include "brk.c"

#include "check.h"

#include <stdio.h>
#include <sys/wait.h>

void *
dmtcp_dlsym(void *handle, const char *symbol)
{
  return dlsym(handle, symbol);
}

void
dmtcp_initialize(void)
{
}

void
dmtcp_register_plugin(DmtcpPluginDescriptor_t d)
{
  (void)d;
}

int
dmtcp_get_ckpt_signal(void)
{
  return SIGUSR2;
}


static siginfo_t
from(uid_t uid, int code)
{
  siginfo_t si;

  memset(&si, 0, sizeof si);
  si.si_signo = SIGTERM;
  si.si_code = code;
  si.si_uid = uid;
  return si;
}

static volatile int calls, last_code;

static void
app_info(int sig, siginfo_t *si, void *uc)
{
  (void)sig;
  (void)uc;
  calls++;
  last_code = si->si_code;
}

static void
app_plain(int sig)
{
  (void)sig;
  calls++;
}

/* The kernel's current handler of SIGTERM. */
static void *
kernel_handler(void)
{
  struct sigaction k;

  real_sigaction(SIGTERM, NULL, &k);
  return (k.sa_flags & SA_SIGINFO) ? (void *)k.sa_sigaction : (void *)k.sa_handler;
}

/* Runs on_term(si) in a child; returns its wait status. */
static int
deliver_in_child(siginfo_t si)
{
  int st;
  pid_t p = fork();

  if (p == 0) {
    on_term(SIGTERM, &si, NULL);
    _exit(0);
  }
  waitpid(p, &st, 0);
  return st;
}

static void
test_take_over(void)
{
  struct sigaction ign, old;

  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  real_sigaction(SIGTERM, &ign, NULL); /* as the launcher leaves it */
  setenv(ENV_NAME, "default", 1);
  event_hook(DMTCP_EVENT_INIT, NULL);
  CHECK(getenv(ENV_NAME) == NULL);
  sigaction(SIGTERM, NULL, &old);
  CHECK(old.sa_handler == SIG_DFL);
  CHECK(kernel_handler() == (void *)on_term);
  CHECK(!term_blocked());
}

static void
test_delivery(void)
{
  siginfo_t slurm = from(0, SI_USER), slurm_t = from(0, SI_TKILL), user = from(1000, SI_USER);
  struct sigaction a, old;
  int st;

  /* Default disposition: root's is dropped, the user's ends the process by SIGTERM. */
  st = deliver_in_child(slurm);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  st = deliver_in_child(slurm_t);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  st = deliver_in_child(user);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
  st = deliver_in_child(from(0, SI_QUEUE)); /* root, but not kill/tgkill */
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);

  /* A handler with SA_SIGINFO: called for the user's, with the siginfo; not for root's. */
  memset(&a, 0, sizeof a);
  a.sa_sigaction = app_info;
  a.sa_flags = SA_SIGINFO | SA_RESTART;
  sigaddset(&a.sa_mask, SIGUSR1);
  CHECK(sigaction(SIGTERM, &a, NULL) == 0);
  sigaction(SIGTERM, NULL, &old);
  CHECK(old.sa_sigaction == app_info && (old.sa_flags & (SA_SIGINFO | SA_RESTART)) == (SA_SIGINFO | SA_RESTART));
  CHECK(sigismember(&old.sa_mask, SIGUSR1) == 1);
  CHECK(kernel_handler() == (void *)on_term);
  calls = 0;
  on_term(SIGTERM, &slurm, NULL);
  CHECK(calls == 0);
  on_term(SIGTERM, &user, NULL);
  CHECK(calls == 1 && last_code == SI_USER);

  /* signal(): returns the previous handler; SIG_IGN is the kernel's too. */
  CHECK((void *)signal(SIGTERM, SIG_IGN) == (void *)app_info);
  CHECK(kernel_handler() == (void *)SIG_IGN);
  st = deliver_in_child(user);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);

  /* A one-shot handler: called once, then the default. */
  memset(&a, 0, sizeof a);
  a.sa_handler = app_plain;
  a.sa_flags = SA_RESETHAND;
  sigaction(SIGTERM, &a, NULL);
  calls = 0;
  on_term(SIGTERM, &user, NULL);
  CHECK(calls == 1);
  sigaction(SIGTERM, NULL, &old);
  CHECK(old.sa_handler == SIG_DFL);
  CHECK(kernel_handler() == (void *)on_term);

  /* sigset(SIG_HOLD) blocks; sigset(handler) unblocks and reports the hold. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  CHECK(sigset(SIGTERM, SIG_HOLD) == SIG_DFL);
  CHECK(term_blocked());
  CHECK(sigset(SIGTERM, app_plain) == SIG_HOLD);
  CHECK(!term_blocked());
#pragma GCC diagnostic pop
  CHECK(signal(SIGTERM, SIG_DFL) == app_plain);

  /* Other signals go to libc untouched. */
  CHECK(signal(SIGUSR1, app_plain) == SIG_DFL);
  CHECK(signal(SIGUSR1, SIG_DFL) == app_plain);
}

static void
test_exec(void)
{
  const char *env[8] = { "A=1", ENV_NAME "=stale", "B=2", NULL };
  DmtcpEventData_t d;
  char *argv[] = { "x", NULL };

  memset(&d, 0, sizeof d);
  d.preExec.envp = env;
  d.preExec.maxEnv = 8;
  pre_exec(&d);
  CHECK(strcmp(env[1], ENV_NAME "=default:unblocked") == 0);
  CHECK(env[3] == NULL);

  /* Inside an exec wrapper: the application's mask from before it; a new entry. */
  env[1] = "C=3";
  signal(SIGTERM, SIG_IGN);
  exec_begin();
  CHECK(term_blocked());
  pre_exec(&d);
  CHECK(strcmp(env[3], ENV_NAME "=ignore:unblocked") == 0 && env[4] == NULL);
  exec_failed(-1);
  CHECK(!term_blocked());
  signal(SIGTERM, SIG_DFL);

  /* A failed exec leaves SIGTERM as it was, and errno as the exec set it. */
  errno = 0;
  CHECK(execve("/nonexistent/program", argv, environ) == -1 && errno == ENOENT);
  CHECK(!term_blocked());
  CHECK(execlp("/nonexistent/program", "x", "y", (char *)NULL) == -1 && errno == ENOENT);
  CHECK(!term_blocked());
  mask_term(SIG_BLOCK);
  CHECK(execl("/nonexistent/program", "x", (char *)NULL) == -1);
  CHECK(term_blocked());
  mask_term(SIG_UNBLOCK);
}

static void
test_take_over_after_exec(void)
{
  int st;
  pid_t p = fork();

  if (p == 0) {
    /* The new image: the kernel reset the handler; SIGTERM blocked by the exec wrapper. */
    struct sigaction dfl, old;

    active = 0;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    real_sigaction(SIGTERM, &dfl, NULL);
    mask_term(SIG_BLOCK);
    setenv(ENV_NAME, "ignore:unblocked", 1);
    take_over();
    sigaction(SIGTERM, NULL, &old);
    _exit(old.sa_handler == SIG_IGN && !term_blocked() && kernel_handler() == (void *)SIG_IGN ? 0 : 1);
  }
  waitpid(p, &st, 0);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Resetting the checkpoint signal (SIGUSR2 here) to its default is dropped, its handler
 * kept and reported; a handler of the application's own, and other signals, go through. */
static void
handler_usr(int sig)
{
  (void)sig;
}

static void
test_ckpt_signal_reset(void)
{
  struct sigaction h, dfl, old, now;

  memset(&h, 0, sizeof h);
  h.sa_handler = handler_usr;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  CHECK(real_sigaction(SIGUSR2, &h, NULL) == 0); /* as DMTCP's own handler */
  CHECK(sigaction(SIGUSR2, &dfl, &old) == 0);
  CHECK(old.sa_handler == handler_usr);
  real_sigaction(SIGUSR2, NULL, &now);
  CHECK(now.sa_handler == handler_usr);
  CHECK(resets_ckpt_signal(SIGUSR2, &dfl));
  CHECK(!resets_ckpt_signal(SIGUSR2, &h));
  CHECK(!resets_ckpt_signal(SIGUSR2, NULL));
  CHECK(!resets_ckpt_signal(SIGUSR1, &dfl));
  CHECK(sigaction(SIGUSR1, &h, NULL) == 0 && sigaction(SIGUSR1, &dfl, NULL) == 0);
  real_sigaction(SIGUSR1, NULL, &now);
  CHECK(now.sa_handler == SIG_DFL);
  CHECK(real_sigaction(SIGUSR2, &dfl, NULL) == 0);
}

int
main(void)
{
  test_ckpt_signal_reset();
  test_take_over();
  test_delivery();
  test_exec();
  test_take_over_after_exec();
  return checks_done("sigterm-test");
}
