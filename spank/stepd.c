/*
 * stepd.c: slurmstepd, the step's main process (runs as root) and the forked task children.
 *
 *   user_init (main process, before tasks fork): start the agent as the job's user, read its
 *     ready message (coordinator host and port, checkpoint folder), put them in the job's
 *     environment. The coordinator may not run yet: what connects to it waits in the queue
 *     of the listening socket the agent gave it.
 *   task_init (each forked task child, as the user, just before exec): replace argv[0] by the
 *     task launcher, which runs the original command under dmtcp_launch. C only: no Go here.
 *   task_exit (main process): after the last local task, close the agent's lifeline and wait,
 *     bounded, for it to stop the coordinator and exit.
 *   exit: the same, in case no task ever ran; then remove the step's runtime folder as the
 *     job's user when it is still there, since Slurm may have SIGKILLed the agent before its
 *     own cleanup.
 *
 * Between fork and exec the child calls only async-signal-safe functions: slurmstepd has threads.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "proto.h"
#include "sdmtcp.h"
#include "stepd.h"

#define STOP_TIMEOUT_MS 15000
/* Removals of the runtime folder at exit whose remover was killed: see sdmtcp_remove_retrying. */
#define REMOVE_TRIES 5
#define MSG_MAX SDMTCP_PROTO_MAX
#define MAX_ARGS 40

enum mode { MODE_OFF, MODE_AGENT, MODE_JOIN };

static struct {
	const struct sdmtcp_config *cfg;
	struct sdmtcp_job job;
	enum mode mode;
	pid_t agent;
	int lifeline; /* write end of the agent's stdin: closing it asks the agent to stop */
	int ready;    /* read end of the agent's fd 3: EOF once the agent has exited */
	uint32_t local_tasks;
	uint32_t step_tasks; /* on every node of the step */
	uid_t uid;   /* the job's user, once the agent was started */
	gid_t gid;
	char runleaf[64]; /* name of the agent's runtime folder ("<job>.<step>"): removed at exit */
	uint32_t exited;
	char error[SDMTCP_ERRLEN]; /* non-empty: each task prints it and fails */
} st = { .agent = -1, .lifeline = -1, .ready = -1 };

int sdmtcp_stepd_post_opt(spank_t sp, const struct sdmtcp_config *c,
			  const struct sdmtcp_request *r)
{
	char err[SDMTCP_ERRLEN];
	(void)sp;
	st.cfg = c;
	if (sdmtcp_resolve(c, r, &st.job, err, sizeof(err)) < 0) {
		/* srun/sbatch refused this already; a node with another plugstack.conf may not. */
		struct sdmtcp_request none = SDMTCP_REQUEST_INIT;
		slurm_error("dmtcp: %s", err);
		/* Keep the user's on/off where policy allows it, with the node's defaults. */
		none.dmtcp = r->dmtcp;
		if (r->dmtcp < 0 && (r->interval >= 0 || r->lead >= 0 || r->runs >= 0 || r->total >= 0))
			none.dmtcp = 1;
		if (r->dmtcp == 0 && !c->allow_opt_out)
			none.dmtcp = -1;
		if (sdmtcp_resolve(c, &none, &st.job, err, sizeof(err)) < 0)
			st.job.on = 0;
	}
	return 0;
}

int sdmtcp_stepd_on(void)
{
	return st.job.on;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

int sdmtcp_executable_by(const char *path, uid_t uid, gid_t gid, const gid_t *gids, int ngids)
{
	struct stat sb;
	mode_t bit = S_IXOTH;

	if (stat(path, &sb) < 0)
		return 0;
	if (!S_ISREG(sb.st_mode)) {
		errno = EACCES;
		return 0;
	}
	if (sb.st_uid == uid) {
		bit = S_IXUSR;
	} else {
		int member = sb.st_gid == gid;
		for (int i = 0; !member && gids && i < ngids; i++)
			member = gids[i] == sb.st_gid;
		if (member)
			bit = S_IXGRP;
	}
	if (!(sb.st_mode & bit)) {
		errno = EACCES;
		return 0;
	}
	return 1;
}

int sdmtcp_poll_ms(long left_ms)
{
	if (left_ms <= 0)
		return 0;
	return left_ms > INT_MAX ? INT_MAX : (int)left_ms;
}

/* Reads until the message's "end" line, EOF or the deadline. Returns bytes read or -1. */
static int read_message(int fd, char *buf, size_t len, long timeout_ms)
{
	size_t n = 0;
	long deadline = now_ms() + timeout_ms;

	buf[0] = '\0';
	while (n + 1 < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long left = deadline - now_ms();
		ssize_t r;
		if (left <= 0)
			return -1;
		if (poll(&p, 1, sdmtcp_poll_ms(left)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (!p.revents)
			continue;
		r = read(fd, buf + n, len - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		buf[n] = '\0';
		if (strstr(buf, "\n" SDMTCP_PROTO_END "\n"))
			break;
	}
	return (int)n;
}

int sdmtcp_parse_ready(char *msg, void (*set)(void *ctx, const char *key, const char *val),
		       void *ctx, char *err, size_t errlen)
{
	char *save = NULL;
	char *line = strtok_r(msg, "\n", &save);
	int ready;

	if (!line) {
		snprintf(err, errlen, "the agent exited without a word");
		return -1;
	}
	if (!strcmp(line, SDMTCP_PROTO_READY))
		ready = 1;
	else if (!strcmp(line, SDMTCP_PROTO_ERROR))
		ready = 0;
	else {
		snprintf(err, errlen, "the agent spoke another protocol: '%.80s' (want '%s')", line,
			 SDMTCP_PROTO_READY);
		return -1;
	}
	snprintf(err, errlen, "the agent failed without saying why");
	while ((line = strtok_r(NULL, "\n", &save))) {
		char *eq;
		if (!strcmp(line, SDMTCP_PROTO_END))
			return ready;
		eq = strchr(line, '=');
		if (!eq || eq == line) {
			snprintf(err, errlen, "malformed line from the agent: '%.80s'", line);
			return -1;
		}
		*eq = '\0';
		for (char *k = line; *k; k++)
			if (!(islower((unsigned char)*k) || *k == '_')) {
				snprintf(err, errlen, "malformed key from the agent: '%.80s'", line);
				return -1;
			}
		if (ready)
			set(ctx, line, eq + 1);
		else if (!strcmp(line, "message"))
			snprintf(err, errlen, "%s", eq + 1);
	}
	snprintf(err, errlen, "the agent's message ended early (no '%s' line)", SDMTCP_PROTO_END);
	return -1;
}

static void set_job_env(void *ctx, const char *key, const char *val)
{
	spank_t sp = ctx;
	char name[128];
	size_t n = strlen(SDMTCP_ENV_PREFIX);

	if (strlen(key) + n >= sizeof(name))
		return;
	memcpy(name, SDMTCP_ENV_PREFIX, n);
	for (const char *k = key; *k; k++)
		name[n++] = (char)toupper((unsigned char)*k);
	name[n] = '\0';
	spank_setenv(sp, name, val, 1);
	/* dmtcp_command and dmtcp_launch read these: users can type dmtcp_command -s in the job. */
	if (!strcmp(key, "coord_host"))
		spank_setenv(sp, "DMTCP_COORD_HOST", val, 1);
	if (!strcmp(key, "coord_port"))
		spank_setenv(sp, "DMTCP_COORD_PORT", val, 1);
}

/* Whether name=... in an environment entry is one of the variables a --dmtcp step hands its
 * tasks: SDMTCP_ENV_PREFIX*, and DMTCP's own coordinator address. */
static int job_variable(const char *entry)
{
	return !strncmp(entry, SDMTCP_ENV_PREFIX, strlen(SDMTCP_ENV_PREFIX)) ||
	       !strncmp(entry, "DMTCP_COORD_HOST=", 17) || !strncmp(entry, "DMTCP_COORD_PORT=", 17);
}

/* Whether the step's SLURM_DMTCP_* variables were set in this job (SDMTCP_ENV_JOB_ID). A job
 * submitted from inside a --dmtcp job inherits its variables: every one of them is removed,
 * so that neither this plugin nor DMTCP's commands in the tasks act on another job's
 * coordinator. */
static int own_job_variables(spank_t sp, uint32_t jobid)
{
	char owner[32], want[32];
	int removed = 0;

	snprintf(want, sizeof(want), "%u", jobid);
	if (spank_getenv(sp, SDMTCP_ENV_JOB_ID, owner, sizeof(owner)) == ESPANK_SUCCESS &&
	    !strcmp(owner, want))
		return 1;
	/* One at a time: an unset changes the environment the next look reads. Bounded: the
	 * plugin never loops on an environment it cannot change. */
	for (int tries = 0; tries < 256; tries++) {
		char **env = NULL, name[128] = "";
		if (spank_get_item(sp, S_JOB_ENV, &env) != ESPANK_SUCCESS || !env)
			break;
		for (char **e = env; *e && !name[0]; e++) {
			size_t len = strcspn(*e, "=");
			if (job_variable(*e) && len < sizeof(name))
				snprintf(name, sizeof(name), "%.*s", (int)len, *e);
		}
		if (!name[0] || spank_unsetenv(sp, name) != ESPANK_SUCCESS)
			break;
		removed++;
	}
	if (removed)
		slurm_verbose("dmtcp: job %u: removed %d SLURM_DMTCP_* and DMTCP_COORD_* variables "
			      "it inherited from another job",
			      jobid, removed);
	return 0;
}

static void close_from(int lowfd)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0) == 0)
		return;
#endif
	for (int fd = lowfd; fd < 65536; fd++)
		close(fd);
}

/* In a forked child of slurmstepd: become uid:gid with the groups gids for good. user_init
 * runs with privileges temporarily dropped (euid = user, real uid root): root is taken back
 * in the child only, to be dropped for good. 0; -1 when root cannot be regained; -2 when the
 * switch fails or root is still held. Async-signal-safe. */
static int become_user(uid_t uid, gid_t gid, size_t ngids, const gid_t *gids)
{
	if (geteuid() != 0 && seteuid(0) < 0)
		return -1;
	if (setgroups(ngids, gids) < 0 || setgid(gid) < 0 || setuid(uid) < 0 || getuid() == 0 ||
	    geteuid() == 0)
		return -2;
	return 0;
}

/* In the forked child: report on the ready pipe and exit (async-signal-safe only). */
static void child_fail(const char *msg)
{
	ssize_t r = write(SDMTCP_AGENT_READY_FD, msg, strlen(msg));
	_exit(r < 0 ? 126 : 127);
}

/* Starts the agent as the job's user and waits for its ready message. 0, or -1 with st.error. */
static int start_agent(spank_t sp, uint32_t stepid)
{
	const struct sdmtcp_config *c = st.cfg;
	uid_t uid;
	gid_t gid;
	gid_t *gids = NULL;
	int ngids = 0;
	uint32_t jobid, restarts = 0, nnodes = 1, nodeid = 0;
	char countbuf[32];
	char stepname[48];
	char a[MAX_ARGS][1100];
	char *argv[MAX_ARGS + 1];
	char envbuf[4][1100];
	char slurmbin[1024];
	char *envp[8];
	int na = 0, ne = 0;
	char failmsg[1400];
	int life[2], rdy[2], devnull;
	int child_life, child_rdy;
	static char msg[MSG_MAX]; /* not on slurmstepd's stack */
	char err[SDMTCP_ERRLEN];
	pid_t pid;
	int rc;

	if (spank_get_item(sp, S_JOB_UID, &uid) || spank_get_item(sp, S_JOB_GID, &gid) ||
	    spank_get_item(sp, S_JOB_ID, &jobid)) {
		snprintf(st.error, sizeof(st.error), "cannot read the job's user and id from Slurm");
		return -1;
	}
	/* slurmstepd 22.05 answers S_SLURM_RESTART_COUNT with 0 for a requeued batch job:
	 * the job's own SLURM_RESTART_COUNT is the reliable source. */
	spank_get_item(sp, S_SLURM_RESTART_COUNT, &restarts);
	if (spank_getenv(sp, "SLURM_RESTART_COUNT", countbuf, sizeof(countbuf)) == ESPANK_SUCCESS)
		restarts = (uint32_t)strtoul(countbuf, NULL, 10);
	spank_get_item(sp, S_JOB_NNODES, &nnodes);
	spank_get_item(sp, S_JOB_NODEID, &nodeid);
	if (spank_get_item(sp, S_JOB_SUPPLEMENTARY_GIDS, &gids, &ngids))
		ngids = 0;
	if (uid == 0) {
		snprintf(st.error, sizeof(st.error), "the agent never runs as root");
		return -1;
	}

#define ARG(...) snprintf(a[na], sizeof(a[na]), __VA_ARGS__), argv[na] = a[na], na++
	ARG("%s", c->agent);
	ARG("--protocol=1");
	ARG("--job-id=%u", jobid);
	if (stepid == SLURM_BATCH_SCRIPT)
		ARG("--step=batch");
	else
		ARG("--step=%u", stepid);
	ARG("--restart-count=%u", restarts);
	ARG("--node-id=%u", nodeid);
	ARG("--nodes=%u", nnodes);
	ARG("--tasks=%u", st.local_tasks);
	ARG("--step-tasks=%u", st.step_tasks);
	ARG("--interval=%ld", st.job.interval);
	ARG("--min-interval=%ld", c->min_interval);
	ARG("--lead-time=%ld", st.job.lead);
	ARG("--max-runs=%ld", st.job.runs);
	ARG("--total-time=%ld", st.job.total);
	ARG("--compress=%s", c->compress ? "true" : "false");
	ARG("--on-no-checkpoint=%s", c->fail_without_checkpoint ? "fail" : "restart");
	ARG("--keep=%ld", c->keep);
	ARG("--checkpoint-dir=%s", c->checkpoint_dir);
	ARG("--runtime-dir=%s", c->runtime_dir);
	if (c->dmtcp_prefix[0])
		ARG("--dmtcp-prefix=%s", c->dmtcp_prefix);
	ARG("--nodeprobe-cache=%s", c->nodeprobe_cache);
	ARG("--on-incompatible=%s", c->on_incompatible_fail ? "fail" : "requeue");
	argv[na] = NULL;
#undef ARG
	/* Slurm's own commands first (scontrol in /opt/slurm/bin on some sites). */
	if (sdmtcp_slurm_bindir(slurmbin, sizeof(slurmbin)) == 0)
		snprintf(envbuf[ne], sizeof(envbuf[ne]), "PATH=%s:/usr/local/bin:/usr/bin:/bin", slurmbin);
	else
		snprintf(envbuf[ne], sizeof(envbuf[ne]), "PATH=/usr/local/bin:/usr/bin:/bin");
	envp[ne] = envbuf[ne], ne++;
	snprintf(envbuf[ne], sizeof(envbuf[ne]), "LANG=C");
	envp[ne] = envbuf[ne], ne++;
	snprintf(envbuf[ne], sizeof(envbuf[ne]), "SLURM_CONF=");
	if (spank_getenv(sp, "SLURM_CONF", envbuf[ne] + 11, (int)sizeof(envbuf[ne]) - 11) ==
	    ESPANK_SUCCESS)
		envp[ne] = envbuf[ne], ne++;
	envp[ne] = NULL;
	snprintf(failmsg, sizeof(failmsg),
		 "%s\nmessage=cannot execute the agent %s (plugstack.conf agent=)\n%s\n",
		 SDMTCP_PROTO_ERROR, c->agent, SDMTCP_PROTO_END);

	if (pipe2(life, O_CLOEXEC) < 0) {
		snprintf(st.error, sizeof(st.error), "pipe: %s", strerror(errno));
		return -1;
	}
	if (pipe2(rdy, O_CLOEXEC) < 0) {
		snprintf(st.error, sizeof(st.error), "pipe: %s", strerror(errno));
		close(life[0]);
		close(life[1]);
		return -1;
	}
	/* Child ends moved above 10, so the dup2 calls below cannot clobber each other. */
	child_life = fcntl(life[0], F_DUPFD_CLOEXEC, 10);
	child_rdy = fcntl(rdy[1], F_DUPFD_CLOEXEC, 10);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	close(life[0]);
	close(rdy[1]);
	if (child_life < 0 || child_rdy < 0 || devnull < 0) {
		snprintf(st.error, sizeof(st.error), "cannot set up the agent's pipes: %s",
			 strerror(errno));
		goto fail_fds;
	}

	pid = fork();
	if (pid < 0) {
		snprintf(st.error, sizeof(st.error), "fork: %s", strerror(errno));
		goto fail_fds;
	}
	if (pid == 0) {
		if (dup2(child_life, 0) < 0 || dup2(devnull, 1) < 0 || dup2(devnull, 2) < 0 ||
		    dup2(child_rdy, SDMTCP_AGENT_READY_FD) < 0)
			_exit(126);
		close_from(SDMTCP_AGENT_READY_FD + 1);
		setsid();
		switch (become_user(uid, gid, (size_t)ngids, gids)) {
		case -1:
			child_fail(SDMTCP_PROTO_ERROR "\nmessage=cannot regain root to start the "
					"agent\n" SDMTCP_PROTO_END "\n");
			break;
		case -2:
			child_fail(SDMTCP_PROTO_ERROR "\nmessage=cannot switch to the job's user\n"
					SDMTCP_PROTO_END "\n");
			break;
		}
		execve(argv[0], argv, envp);
		child_fail(failmsg);
	}
	close(child_life);
	close(child_rdy);
	close(devnull);
	st.agent = pid;
	st.uid = uid;
	st.gid = gid;
	/* The same name as the agent's runtime folder (Config.RunDirName), found at exit in the
	 * user's folders under runtime_dir (sdmtcp_find_step_dir). */
	if (stepid == SLURM_BATCH_SCRIPT)
		snprintf(stepname, sizeof(stepname), "batch");
	else if (nnodes > 1 && nodeid > 0)
		snprintf(stepname, sizeof(stepname), "step-%u.node-%u", stepid, nodeid);
	else
		snprintf(stepname, sizeof(stepname), "step-%u", stepid);
	snprintf(st.runleaf, sizeof(st.runleaf), "%u.%s", jobid, stepname);
	st.lifeline = life[1];
	st.ready = rdy[0];

	if (read_message(st.ready, msg, sizeof(msg), c->agent_timeout * 1000) < 0) {
		snprintf(st.error, sizeof(st.error),
			 "the agent %s did not get ready within %lds (plugstack.conf agent_timeout)",
			 c->agent, c->agent_timeout);
		return -1;
	}
	rc = sdmtcp_parse_ready(msg, set_job_env, sp, err, sizeof(err));
	if (rc != 1) {
		snprintf(st.error, sizeof(st.error), "%s", err);
		return -1;
	}
	/* Whose the variables are: a step reads them only in the job that set them. */
	snprintf(countbuf, sizeof(countbuf), "%u", jobid);
	spank_setenv(sp, SDMTCP_ENV_JOB_ID, countbuf, 1);
	return 0;

fail_fds:
	if (child_life >= 0)
		close(child_life);
	if (child_rdy >= 0)
		close(child_rdy);
	if (devnull >= 0)
		close(devnull);
	close(life[1]);
	close(rdy[0]);
	return -1;
}

/* Asks the agent to stop (EOF on its stdin), waits for it, bounded, then kills what is left. */
static void stop_agent(void)
{
	long deadline = now_ms() + STOP_TIMEOUT_MS;
	char buf[256];

	if (st.agent <= 0)
		return;
	close_fd(&st.lifeline);
	while (st.ready >= 0) {
		struct pollfd p = { .fd = st.ready, .events = POLLIN };
		long left = deadline - now_ms();
		ssize_t r;
		if (left <= 0) {
			slurm_error("dmtcp: the agent (pid %d) did not stop within %ds; killing it",
				    (int)st.agent, STOP_TIMEOUT_MS / 1000);
			break;
		}
		if (poll(&p, 1, sdmtcp_poll_ms(left)) <= 0)
			continue;
		r = read(st.ready, buf, sizeof(buf));
		if (r == 0 || (r < 0 && errno != EINTR))
			close_fd(&st.ready); /* EOF: the agent and its children are gone */
	}
	/* Signalled only while its pid is still the agent's: running, or a zombie nobody has
	 * reaped (WNOWAIT keeps it so). Once slurmstepd has reaped it, the pid, and the group
	 * of that number, may belong to another process by now. */
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)st.agent, &si, WEXITED | WNOHANG | WNOWAIT) == 0) {
		kill(-st.agent, SIGKILL);
		kill(st.agent, SIGKILL);
		waitpid(st.agent, NULL, WNOHANG);
	}
	close_fd(&st.ready);
	st.agent = -1;
}

/* Opens name under dirfd without following a link; the result must be owned by uid and be a
 * folder (dir=1) or a regular file (dir=0). Returns the fd or -1. */
static int open_owned(int dirfd, const char *name, uid_t uid, int dir)
{
	struct stat sb;
	int fd = openat(dirfd, name,
			O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (dir ? O_DIRECTORY : O_NONBLOCK));
	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) < 0 || sb.st_uid != uid ||
	    (dir ? !S_ISDIR(sb.st_mode) : !S_ISREG(sb.st_mode))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Whether name is uid's folder under runtime_dir: "slurm-dmtcp-<uid>", or
 * "slurm-dmtcp-<uid>.<suffix>", which the agent makes when another user planted the first. */
static int user_dir_name(const char *name, uid_t uid)
{
	char want[48];
	size_t n = (size_t)snprintf(want, sizeof(want), "slurm-dmtcp-%u", (unsigned)uid);
	return !strncmp(name, want, n) && (name[n] == '\0' || (name[n] == '.' && name[n + 1]));
}

int sdmtcp_open_runtime_dir(const char *runtime_dir, uid_t uid)
{
	char real[PATH_MAX], *save = NULL, *name;
	int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	/* realpath only finds where the links lead; every folder is then opened without
	 * following anything and checked, so a link swapped in meanwhile fails the walk. */
	if (fd < 0 || !realpath(runtime_dir, real)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (name = strtok_r(real, "/", &save);; name = strtok_r(NULL, "/", &save)) {
		struct stat sb;
		int next;
		if (fstat(fd, &sb) < 0 || !S_ISDIR(sb.st_mode) || (sb.st_uid != 0 && sb.st_uid != uid) ||
		    ((sb.st_mode & 022) && !(sb.st_mode & S_ISVTX))) {
			close(fd);
			return -1;
		}
		if (!name)
			return fd;
		next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (next < 0)
			return -1;
		fd = next;
	}
}

int sdmtcp_find_step_dir(const char *runtime_dir, uid_t uid, const char *leaf, int skip,
			 char *path, size_t len)
{
	int base, list, found = -1;
	DIR *d;
	struct dirent *e;

	base = sdmtcp_open_runtime_dir(runtime_dir, uid);
	if (base < 0)
		return -1;
	list = openat(base, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = list < 0 ? NULL : fdopendir(list);
	if (!d) {
		if (list >= 0)
			close(list);
		close(base);
		return -1;
	}
	while (found < 0 && (e = readdir(d))) {
		int user;
		if (!user_dir_name(e->d_name, uid))
			continue;
		/* Only a real folder of the user's: nothing another user planted is opened. */
		user = open_owned(base, e->d_name, uid, 1);
		if (user < 0)
			continue;
		found = open_owned(user, leaf, uid, 1);
		close(user);
		if (found >= 0 && skip-- > 0) {
			close(found);
			found = -1;
		} else if (found >= 0 && path) {
			snprintf(path, len, "%s/%s/%s", runtime_dir, e->d_name, leaf);
		}
	}
	closedir(d);
	close(base);
	return found;
}

int sdmtcp_batch_coordinator_is(const char *runtime_dir, uid_t uid, uint32_t jobid,
				const char *port)
{
	char leaf[48], buf[32];
	int step, file, same = 0;
	ssize_t n;

	if (!port[0])
		return 0;
	snprintf(leaf, sizeof(leaf), "%u.batch", jobid);
	for (int i = 0; !same && (step = sdmtcp_find_step_dir(runtime_dir, uid, leaf, i, NULL, 0)) >= 0;
	     i++) {
		file = open_owned(step, "coordinator.port", uid, 0);
		close(step);
		if (file < 0)
			continue;
		n = read(file, buf, sizeof(buf) - 1);
		close(file);
		if (n > 0) {
			buf[n] = '\0';
			buf[strcspn(buf, " \t\r\n")] = '\0';
			same = buf[0] && !strcmp(buf, port);
		}
	}
	return same;
}

int sdmtcp_stepd_user_init(spank_t sp)
{
	uint32_t stepid = 0, nnodes = 1, jobid = 0;
	uid_t uid = 0;
	gid_t gid = 0, *gids = NULL;
	int ngids = 0;
	char port[32];
	int inside_batch, has_port, own;

	if (!st.cfg)
		return 0;
	spank_get_item(sp, S_JOB_STEPID, &stepid);
	spank_get_item(sp, S_JOB_UID, &uid);
	spank_get_item(sp, S_JOB_NNODES, &nnodes);
	spank_get_item(sp, S_JOB_LOCAL_TASK_COUNT, &st.local_tasks);
	spank_get_item(sp, S_JOB_TOTAL_TASK_COUNT, &st.step_tasks);
	if (stepid == SLURM_EXTERN_CONT || stepid == SLURM_INTERACTIVE_STEP ||
	    stepid == SLURM_PENDING_STEP || uid == 0)
		return 0;
	/* A step of a --dmtcp batch job joins the job's coordinator (the variable came down
	 * from the batch script's environment), unless the step says --dmtcp=off. The port
	 * must be the one this job's batch agent wrote on this node: a variable copied from
	 * another job, or set to reach another user's coordinator, is ignored. */
	spank_get_item(sp, S_JOB_ID, &jobid);
	own = own_job_variables(sp, jobid);
	has_port = stepid != SLURM_BATCH_SCRIPT && own &&
		   spank_getenv(sp, SDMTCP_ENV_COORD_PORT, port, sizeof(port)) == ESPANK_SUCCESS;
	/* A step across nodes started from a --dmtcp batch script: its tasks on the other nodes
	 * cannot join the batch job's coordinator in a way that can be restored (the batch
	 * script's srun is checkpointed with it), and a coordinator of its own would checkpoint
	 * the step apart from the script. Refused, on every node of the step: the other nodes
	 * cannot check the batch agent's port file, so the variable alone decides there. */
	if (has_port && nnodes > 1 && sdmtcp_req.dmtcp != 0) {
		st.mode = MODE_AGENT;
		snprintf(st.error, sizeof(st.error),
			 "srun --dmtcp steps across %u nodes inside a --dmtcp batch job are not "
			 "supported (the batch script is under DMTCP); submit the batch job without "
			 "--dmtcp and give --dmtcp to the srun steps, or run the step on one node",
			 nnodes);
		return 0;
	}
	inside_batch = has_port && sdmtcp_batch_coordinator_is(st.cfg->runtime_dir, uid, jobid, port);
	if (inside_batch && sdmtcp_req.dmtcp != 0) {
		st.mode = MODE_JOIN;
		return 0;
	}
	if (!st.job.on)
		return 0;

	spank_get_item(sp, S_JOB_GID, &gid);
	if (spank_get_item(sp, S_JOB_SUPPLEMENTARY_GIDS, &gids, &ngids))
		ngids = 0;
	if (!sdmtcp_executable_by(st.cfg->exec, uid, gid, gids, ngids)) {
		slurm_error("dmtcp: the task launcher %s is not executable by user %u (%s); fix "
			    "plugstack.conf exec= or the installation",
			    st.cfg->exec, (unsigned)uid, strerror(errno));
		return -1;
	}
	if (st.cfg->dmtcp_prefix[0])
		spank_setenv(sp, SDMTCP_ENV_PREFIX_DIR, st.cfg->dmtcp_prefix, 1);
	st.mode = MODE_AGENT;
	/* A step across nodes outside a --dmtcp batch job: an agent on every node; the one of
	 * node 0 runs the step's coordinator, the others join it (agent/steps.go). */
	/* Only the agent says what to restore: never a variable from the user's environment. */
	spank_unsetenv(sp, SDMTCP_ENV_PREFIX "RESTORE");
	spank_unsetenv(sp, SDMTCP_ENV_PREFIX "RESTORE_NOTE");
	if (start_agent(sp, stepid) < 0) {
		slurm_error("dmtcp: %s", st.error);
		stop_agent();
	}
	return 0;
}

int sdmtcp_stepd_task_init(spank_t sp)
{
	int argc = 0;
	char **argv = NULL;
	char *launcher;

	if (st.mode == MODE_OFF)
		return 0;
	if (spank_get_item(sp, S_JOB_ARGV, &argc, &argv) != ESPANK_SUCCESS || argc < 1)
		return -1;
	launcher = strdup(st.cfg->exec);
	if (!launcher)
		return -1;
	spank_setenv(sp, SDMTCP_ENV_ARGV0, argv[0], 1);
	if (st.error[0])
		spank_setenv(sp, SDMTCP_ENV_ERROR, st.error, 1);
	argv[0] = launcher; /* the child execs it right after this hook */
	return 0;
}

int sdmtcp_stepd_task_exit(spank_t sp)
{
	(void)sp;
	if (st.mode != MODE_AGENT)
		return 0;
	if (++st.exited >= st.local_tasks)
		stop_agent();
	return 0;
}

/* Waits for the child pid until deadline (ms, now_ms clock): waitpid's answer, 0 when the
 * child is still running at the deadline. Woken by the child's exit through a pidfd (Linux
 * 5.3), else polls every 2 ms: slurmstepd's signal handling is not ours to change. */
static pid_t wait_child(pid_t pid, int *status, long deadline)
{
#ifdef SYS_pidfd_open
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd >= 0) {
		pid_t r;
		while ((r = waitpid(pid, status, WNOHANG)) == 0 && now_ms() < deadline) {
			struct pollfd p = { .fd = pfd, .events = POLLIN };
			(void)poll(&p, 1, sdmtcp_poll_ms(deadline - now_ms()));
		}
		close(pfd);
		return r;
	}
#endif
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		struct timespec ts = { 0, 2 * 1000 * 1000 };
		if (r != 0 || now_ms() >= deadline)
			return r;
		nanosleep(&ts, NULL);
	}
}

char sdmtcp_remove_why[160];
int sdmtcp_remove_killed;
void (*sdmtcp_remove_forked)(pid_t child);

int sdmtcp_remove_as(uid_t uid, gid_t gid, const char *dir, long timeout_ms)
{
	char parent[1100];
	char *slash;
	char *argv[] = { "/bin/sh", "-c", "rm -rf --one-file-system -- \"$1\" || exit 1; "
			 "rmdir -- \"$2\" 2>/dev/null; exit 0", "sh", (char *)dir, parent, NULL };
	char *envp[] = { "PATH=/usr/bin:/bin", NULL };
	long deadline = now_ms() + timeout_ms;
	int status;
	pid_t pid, r;

	sdmtcp_remove_killed = 0;
	snprintf(parent, sizeof(parent), "%s", dir);
	slash = strrchr(parent, '/');
	if (!dir[0] || !slash || slash == parent)
		return -1;
	*slash = '\0';
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* slurmstepd ends what is left of the step while this runs (it is the step's
		 * end): SIGTERM, sent to the step's processes, must not cut the removal short,
		 * and a session of its own keeps it out of the step's process groups. */
		signal(SIGTERM, SIG_IGN);
		(void)setsid();
		/* As the user, never as root: the folder and everything in it are the user's. A
		 * caller that is not root (the C tests) runs it as itself. */
		if (getuid() == 0 ? become_user(uid, gid, 0, NULL) < 0 : geteuid() == 0)
			_exit(126);
		close_from(3);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	if (sdmtcp_remove_forked)
		sdmtcp_remove_forked(pid);
	r = wait_child(pid, &status, deadline);
	if (r == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		snprintf(sdmtcp_remove_why, sizeof(sdmtcp_remove_why), "still running after %ld ms", timeout_ms);
		return -1;
	}
	if (r != pid)
		snprintf(sdmtcp_remove_why, sizeof(sdmtcp_remove_why), "waitpid: %s", strerror(errno));
	else if (WIFSIGNALED(status)) {
		sdmtcp_remove_killed = 1;
		snprintf(sdmtcp_remove_why, sizeof(sdmtcp_remove_why), "the remover was killed by signal %d",
			 WTERMSIG(status));
	}
	else if (WEXITSTATUS(status) != 0)
		snprintf(sdmtcp_remove_why, sizeof(sdmtcp_remove_why), "the remover exited with %d%s",
			 WEXITSTATUS(status), WEXITSTATUS(status) == 126 ? " (cannot become the user)" : "");
	else
		return 0;
	return -1;
}

int sdmtcp_remove_retrying(uid_t uid, gid_t gid, const char *dir, long timeout_ms, int tries)
{
	long pause_ms = 50;

	for (int i = 1;; i++) {
		if (sdmtcp_remove_as(uid, gid, dir, timeout_ms) == 0)
			return 0;
		if (!sdmtcp_remove_killed || i >= tries)
			return -1;
		struct timespec ts = { pause_ms / 1000, (pause_ms % 1000) * 1000 * 1000 };
		nanosleep(&ts, NULL);
		pause_ms *= 2;
	}
}

int sdmtcp_stepd_exit(spank_t sp)
{
	char dir[1200];
	int fd;

	(void)sp;
	stop_agent();
	/* The agent removes its folder when it stops cleanly: then nothing is found (a look
	 * only, as root, opening nothing but real folders of the user's; the removal itself
	 * always runs as the user). Bounded: a folder that cannot be removed stops the loop. */
	for (int i = 0; st.runleaf[0] && i < 8; i++) {
		fd = sdmtcp_find_step_dir(st.cfg->runtime_dir, st.uid, st.runleaf, 0, dir, sizeof(dir));
		if (fd < 0)
			break;
		close(fd);
		if (sdmtcp_remove_retrying(st.uid, st.gid, dir, 5000, REMOVE_TRIES) < 0) {
			slurm_error("dmtcp: could not remove the runtime folder %s: %s", dir,
				    sdmtcp_remove_why);
			break;
		}
	}
	st.runleaf[0] = '\0';
	return 0;
}
