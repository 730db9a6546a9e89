#!/usr/bin/env bash
# Bring up a one-node Slurm cluster for slurm-dmtcp's demo and integration tests.
#
# Run as root. Idempotent: a second run reuses what is already running and says so.
# Everything (configuration, state, logs) lives in one scratch folder, $CLUSTER_DIR
# (default /var/tmp/slurm-dmtcp-cluster); nothing is written to /etc except through apt-get.
#
# Environment:
#   CLUSTER_DIR   scratch folder (default /var/tmp/slurm-dmtcp-cluster)
#   PLUGIN        the plugin to enable (default: <repo>/build/spank_dmtcp.so)
#   DMTCP_PREFIX  where DMTCP is installed; else the folder above dmtcp_launch in PATH;
#                 else /opt/dmtcp when it holds bin/dmtcp_launch
#   TEST_USERS    regular users to create for jobs (default "sdmtcp sdmtcp2")
#   PLUGSTACK_ARGS extra key=value arguments for the plugin line in plugstack.conf
#   CTLD_PORT, SLURMD_PORT  ports (default 16817, 16818): a second cluster on the same host
#                 needs its own, its own CLUSTER_DIR and SLURM_CONF=$CLUSTER_DIR/slurm.conf
#   FIRST_JOB_ID  first job id of a new cluster (FirstJobId); a second cluster on the same
#                 host should start elsewhere, e.g. 100000, so that its jobs' checkpoint
#                 folders (~/.slurm-dmtcp/<jobid>) and runtime folders do not collide
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CLUSTER_DIR=${CLUSTER_DIR:-/var/tmp/slurm-dmtcp-cluster}
PLUGIN=${PLUGIN:-$repo/build/spank_dmtcp.so}
TEST_USERS=${TEST_USERS:-sdmtcp sdmtcp2}
CTLD_PORT=${CTLD_PORT:-16817}
SLURMD_PORT=${SLURMD_PORT:-16818}

say() { printf 'cluster-up: %s\n' "$*"; }
die() { printf 'cluster-up: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and starts slurmctld, slurmd and munged)"
[ -f "$PLUGIN" ] || die "plugin $PLUGIN not found: run 'make' first, or set PLUGIN=/path/to/spank_dmtcp.so"

# 1. Packages.
missing=""
for pair in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || missing="$missing ${pair#*:}"
done
[ -f /usr/include/slurm/spank.h ] || missing="$missing libslurm-dev"
if [ -n "$missing" ]; then
	say "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	# shellcheck disable=SC2086
	apt-get install -y -qq $missing >/dev/null
else
	say "Slurm and munge packages already installed"
fi

# 2. DMTCP: configured prefix, else PATH, else the conventional prefix.
dmtcp_prefix=""
if [ -n "${DMTCP_PREFIX:-}" ]; then
	[ -x "$DMTCP_PREFIX/bin/dmtcp_launch" ] || die "DMTCP_PREFIX=$DMTCP_PREFIX has no bin/dmtcp_launch"
	dmtcp_prefix=$DMTCP_PREFIX
elif p=$(command -v dmtcp_launch 2>/dev/null); then
	dmtcp_prefix=$(cd "$(dirname "$p")/.." && pwd)
elif [ -x /opt/dmtcp/bin/dmtcp_launch ]; then
	dmtcp_prefix=/opt/dmtcp
fi
if [ -n "$dmtcp_prefix" ]; then
	say "DMTCP found in $dmtcp_prefix"
else
	say "DMTCP not found (looked in \$DMTCP_PREFIX, PATH, /opt/dmtcp): jobs with --dmtcp will fail with a clear message"
fi

# 3. Users that submit test jobs (the agent never runs as root).
for u in $TEST_USERS; do
	if ! id "$u" >/dev/null 2>&1; then
		useradd --create-home --shell /bin/bash "$u"
		say "created user $u"
	fi
done

# 4. Configuration and state in one scratch folder.
mkdir -p "$CLUSTER_DIR"/{state,spool,log,run}
chmod 0755 "$CLUSTER_DIR"
node=$(hostname -s)
hw=$(slurmd -C 2>/dev/null | head -n 1)
cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
sockets=$(sed -n 's/.* SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$hw")
cores=$(sed -n 's/.* CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$hw")
threads=$(sed -n 's/.* ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$hw")
mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
[ -n "$cpus" ] || die "slurmd -C did not report the node's hardware: $hw"

conf=$CLUSTER_DIR/slurm.conf
cat >"$conf.new" <<CONF
# Written by slurm-dmtcp contrib/cluster/cluster-up.sh
ClusterName=sdmtcp
SlurmctldHost=$node
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=15
StateSaveLocation=$CLUSTER_DIR/state
SlurmdSpoolDir=$CLUSTER_DIR/spool
SlurmctldPidFile=$CLUSTER_DIR/run/slurmctld.pid
SlurmdPidFile=$CLUSTER_DIR/run/slurmd.pid
SlurmctldLogFile=$CLUSTER_DIR/log/slurmctld.log
SlurmdLogFile=$CLUSTER_DIR/log/slurmd.log
SlurmdDebug=info
SlurmctldDebug=info
PlugStackConfig=$CLUSTER_DIR/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true
ReturnToService=2
KillWait=10
MinJobAge=30
InactiveLimit=0
SlurmdTimeout=30
SchedulerParameters=sched_interval=1
${FIRST_JOB_ID:+FirstJobId=$FIRST_JOB_ID}
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
JobRequeue=1
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP PriorityTier=5 PreemptMode=OFF
PartitionName=low Nodes=$node MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=15
PartitionName=high Nodes=$node MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
CONF
mv "$conf.new" "$conf"

# The plugin and the executables are copied where every job user can read them (the
# checkout may sit in a folder only root can enter, such as /root).
bindir=$CLUSTER_DIR/bin
mkdir -p "$bindir"
for f in "$PLUGIN" "$repo"/build/slurm-dmtcp-agent "$repo"/build/slurm-dmtcp-exec "$repo"/build/dmtcpctl "$repo"/build/slurm-dmtcp-coordguard.so; do
	[ -f "$f" ] || die "$f not found: run 'make' first"
	install -m 0755 "$f" "$bindir/.$(basename "$f").new"
	mv -f "$bindir/.$(basename "$f").new" "$bindir/$(basename "$f")"
done
chmod 0755 "$bindir"
# The Python client (contrib/python) for job scripts: PYTHONPATH=$CLUSTER_DIR/python.
install -d -m 0755 "$CLUSTER_DIR/python"
install -m 0644 "$repo/contrib/python/slurm_dmtcp.py" "$CLUSTER_DIR/python/slurm_dmtcp.py"
args="${dmtcp_prefix:+dmtcp_prefix=$dmtcp_prefix} agent=$bindir/slurm-dmtcp-agent exec=$bindir/slurm-dmtcp-exec ${PLUGSTACK_ARGS:-}"
printf 'required %s %s\n' "$bindir/$(basename "$PLUGIN")" "$args" >"$CLUSTER_DIR/plugstack.conf"
chmod 0644 "$conf" "$CLUSTER_DIR/plugstack.conf"
say "configuration in $conf, plugin line: $(cat "$CLUSTER_DIR/plugstack.conf")"

# 5. Daemons.
if ! { munge -n </dev/null | unmunge >/dev/null 2>&1; }; then
	mkdir -p /run/munge /var/log/munge /var/lib/munge
	chown munge: /run/munge /var/log/munge /var/lib/munge
	runuser -u munge -- /usr/sbin/munged
	say "started munged"
else
	say "munged already running"
fi

export SLURM_CONF=$conf
running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if running "$CLUSTER_DIR/run/slurmctld.pid"; then
	scontrol reconfigure >/dev/null 2>&1 || true
	say "slurmctld already running (reconfigured)"
else
	slurmctld -f "$conf"
	say "started slurmctld"
fi
if running "$CLUSTER_DIR/run/slurmd.pid"; then
	say "slurmd already running"
else
	# slurmd -D keeps it in the foreground of a detached subshell: no daemonizing.
	setsid slurmd -D -f "$conf" </dev/null >>"$CLUSTER_DIR/log/slurmd.out" 2>&1 &
	say "started slurmd"
fi

for _ in $(seq 1 60); do
	state=$(sinfo -h -n "$node" -o %t 2>/dev/null | head -n 1 || true)
	case "$state" in idle | mix | alloc) break ;; esac
	case "$state" in down* | drain*) scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true ;; esac
	sleep 0.5
done
case "$state" in
idle | mix | alloc) say "node $node is $state; export SLURM_CONF=$conf" ;;
*) die "node $node did not become idle (state '$state'); see $CLUSTER_DIR/log/" ;;
esac
