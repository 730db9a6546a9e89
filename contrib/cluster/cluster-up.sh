#!/usr/bin/env bash
# Bring up a Slurm cluster for slurm-dmtcp's demo and integration tests: one node by default,
# or NODES=N nodes on this one machine.
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
#   NODES         number of nodes (default 1). 1: one node named after the host, NodeAddr
#                 127.0.0.1, daemons in the host's namespaces. N >= 2: nodes n1..nN, each
#                 slurmd in its own network namespace (a veth pair onto a bridge this script
#                 creates) and UTS namespace (hostname = node name); slurmctld stays on the
#                 host and is reached at the bridge's address. Changing NODES of a running
#                 cluster needs cluster-down first.
#   NET_PREFIX    first three octets of the nodes' /24 (default 10.77.0): the bridge (the
#                 controller's address) is NET_PREFIX.1, node nI is NET_PREFIX.(10+I)
#   NETNS_PREFIX  network namespace names are NETNS_PREFIX + node name
#                 (default sdmtcp-<CTLD_PORT>-, e.g. sdmtcp-16817-n1); the bridge is
#                 sdbr<CTLD_PORT>, the host ends of the veth pairs sdv<CTLD_PORT>n<I>
#   NODE_HOOK     optional command run once per node before its slurmd starts, as
#                 NODE_HOOK NODE NETNS ADDR (NETNS "-" with one node), with CLUSTER_DIR and
#                 SLURM_CONF exported: the place to give a node facts of its own. Each
#                 slurmd also gets SDMTCP_NODE=<node name> in its environment.
# What it started is listed in $CLUSTER_DIR/run/nodes (node, namespace, veth, address per
# line) and $CLUSTER_DIR/run/net; cluster-down.sh reads them.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CLUSTER_DIR=${CLUSTER_DIR:-/var/tmp/slurm-dmtcp-cluster}
PLUGIN=${PLUGIN:-$repo/build/spank_dmtcp.so}
TEST_USERS=${TEST_USERS:-sdmtcp sdmtcp2}
CTLD_PORT=${CTLD_PORT:-16817}
SLURMD_PORT=${SLURMD_PORT:-16818}
NODES=${NODES:-1}
NET_PREFIX=${NET_PREFIX:-10.77.0}
NETNS_PREFIX=${NETNS_PREFIX:-sdmtcp-$CTLD_PORT-}

say() { printf 'cluster-up: %s\n' "$*"; }
die() { printf 'cluster-up: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and starts slurmctld, slurmd and munged)"
[ -f "$PLUGIN" ] || die "plugin $PLUGIN not found: run 'make' first, or set PLUGIN=/path/to/spank_dmtcp.so"
case "$NODES" in '' | *[!0-9]* | 0*) die "NODES=$NODES: expected a number from 1 to 200" ;; esac
[ "$NODES" -le 200 ] || die "NODES=$NODES: expected a number from 1 to 200"
[[ "$NET_PREFIX" =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "NET_PREFIX=$NET_PREFIX: expected three octets such as 10.77.0"
if [ "$NODES" -gt 1 ]; then
	for c in ip nsenter unshare; do
		command -v "$c" >/dev/null 2>&1 || die "NODES=$NODES needs $c (packages iproute2, util-linux)"
	done
fi

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
host=$(hostname -s)
hw=$(slurmd -C 2>/dev/null | head -n 1)
cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
sockets=$(sed -n 's/.* SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$hw")
cores=$(sed -n 's/.* CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$hw")
threads=$(sed -n 's/.* ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$hw")
mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
[ -n "$cpus" ] || die "slurmd -C did not report the node's hardware: $hw"

# The nodes: "name netns veth address" per line. One node: the host itself, on 127.0.0.1.
# Several: n1..nN, each in its own network namespace behind a veth on the bridge.
bridge=sdbr$CTLD_PORT
layout=""
if [ "$NODES" -eq 1 ]; then
	layout="$host - - 127.0.0.1"
	ctld_host=$host
	nodelist=$host
	spooldir=$CLUSTER_DIR/spool
	slurmd_pidfile=$CLUSTER_DIR/run/slurmd.pid
	slurmd_logfile=$CLUSTER_DIR/log/slurmd.log
else
	for i in $(seq 1 "$NODES"); do
		layout="$layout${layout:+$'\n'}n$i ${NETNS_PREFIX}n$i sdv${CTLD_PORT}n$i $NET_PREFIX.$((10 + i))"
	done
	# The controller stays in the host's namespaces under the host's name; nodes reach it
	# at the bridge's address (name(address): no name lookup, no UTS namespace needed).
	ctld_host="$host($NET_PREFIX.1)"
	nodelist="n[1-$NODES]"
	spooldir=$CLUSTER_DIR/spool/%n
	slurmd_pidfile=$CLUSTER_DIR/run/slurmd-%n.pid
	slurmd_logfile=$CLUSTER_DIR/log/slurmd-%n.log
fi
nodelines=$(while read -r name _ _ addr; do
	printf 'NodeName=%s NodeAddr=%s CPUs=%s SocketsPerBoard=%s CoresPerSocket=%s ThreadsPerCore=%s RealMemory=%s State=UNKNOWN\n' \
		"$name" "$addr" "$cpus" "$sockets" "$cores" "$threads" "$mem"
done <<<"$layout")

# A running cluster keeps its nodes: adding or removing nodes means restarting slurmctld
# and moving namespaces, which cluster-down then cluster-up does cleanly.
statefile=$CLUSTER_DIR/run/nodes
if [ -f "$statefile" ] && [ "$(cat "$statefile")" != "$layout" ]; then
	die "the cluster in $CLUSTER_DIR was brought up with other nodes ($(awk '{print $1}' "$statefile" | paste -sd ' ')); run cluster-down.sh (same CLUSTER_DIR) first"
fi
if [ ! -f "$statefile" ] && [ "$NODES" -gt 1 ] && [ -f "$CLUSTER_DIR/run/slurmctld.pid" ] &&
	kill -0 "$(cat "$CLUSTER_DIR/run/slurmctld.pid")" 2>/dev/null; then
	die "a one-node cluster is running in $CLUSTER_DIR; run cluster-down.sh (same CLUSTER_DIR) first"
fi

conf=$CLUSTER_DIR/slurm.conf
cat >"$conf.new" <<CONF
# Written by slurm-dmtcp contrib/cluster/cluster-up.sh
ClusterName=sdmtcp
SlurmctldHost=$ctld_host
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=15
StateSaveLocation=$CLUSTER_DIR/state
SlurmdSpoolDir=$spooldir
SlurmctldPidFile=$CLUSTER_DIR/run/slurmctld.pid
SlurmdPidFile=$slurmd_pidfile
SlurmctldLogFile=$CLUSTER_DIR/log/slurmctld.log
SlurmdLogFile=$slurmd_logfile
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
$nodelines
PartitionName=debug Nodes=$nodelist Default=YES MaxTime=INFINITE State=UP PriorityTier=5 PreemptMode=OFF
PartitionName=low Nodes=$nodelist MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=15
PartitionName=high Nodes=$nodelist MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
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
# The DMTCP plugin of the tasks, beside the task launcher; built only where DMTCP is.
if [ -f "$repo"/build/slurm-dmtcp-sigterm.so ]; then
	install -m 0755 "$repo"/build/slurm-dmtcp-sigterm.so "$bindir/.slurm-dmtcp-sigterm.so.new"
	mv -f "$bindir/.slurm-dmtcp-sigterm.so.new" "$bindir/slurm-dmtcp-sigterm.so"
elif [ -n "$dmtcp_prefix" ]; then
	die "$repo/build/slurm-dmtcp-sigterm.so not found: run 'make DMTCP_PREFIX=$dmtcp_prefix' first"
fi
chmod 0755 "$bindir"
# The Python client (contrib/python) for job scripts: PYTHONPATH=$CLUSTER_DIR/python.
install -d -m 0755 "$CLUSTER_DIR/python"
install -d -m 0755 "$CLUSTER_DIR/python/slurm_dmtcp"
install -m 0644 "$repo/contrib/python/slurm_dmtcp/__init__.py" "$repo/contrib/python/slurm_dmtcp/py.typed" "$CLUSTER_DIR/python/slurm_dmtcp/"
rm -f "$CLUSTER_DIR/python/slurm_dmtcp.py"
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

# The node layout is recorded before anything is created, so that cluster-down.sh finds
# all of it even when this script stops half-way.
printf '%s\n' "$layout" >"$statefile.new"
mv "$statefile.new" "$statefile"

# 5a. Several nodes: the bridge (the controller's side, NET_PREFIX.1), and per node a
# network namespace with a veth pair (eth0 inside, NET_PREFIX.(10+I)) and loopback.
if [ "$NODES" -gt 1 ]; then
	printf 'bridge=%s\naddress=%s.1/24\n' "$bridge" "$NET_PREFIX" >"$CLUSTER_DIR/run/net"
	if other=$(ip -o -4 addr show | awk -v p="$NET_PREFIX." -v b="$bridge" '$2 != b && index($4, p) == 1 {print $2; exit}') && [ -n "$other" ]; then
		die "$NET_PREFIX.0/24 is already used by interface $other (another cluster?): set NET_PREFIX"
	fi
	if ! ip link show "$bridge" >/dev/null 2>&1; then
		ip link add "$bridge" type bridge
		say "created bridge $bridge"
	fi
	ip addr replace "$NET_PREFIX.1/24" dev "$bridge"
	ip link set "$bridge" up
	while read -r name ns veth addr; do
		[ -e "/run/netns/$ns" ] || ip netns add "$ns"
		if ! ip link show "$veth" >/dev/null 2>&1; then
			ip -n "$ns" link del eth0 2>/dev/null || true
			ip link add "$veth" type veth peer name eth0 netns "$ns"
		fi
		ip link set "$veth" master "$bridge" up
		ip -n "$ns" addr replace "$addr/24" dev eth0
		ip -n "$ns" link set lo up
		ip -n "$ns" link set eth0 up
	done <<<"$layout"
	say "network: bridge $bridge $NET_PREFIX.1/24 (controller), $(awk '{printf "%s=%s (netns %s) ", $1, $4, $2}' "$statefile")"
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
while read -r name ns _ addr; do
	if [ "$NODES" -eq 1 ]; then pidfile=$CLUSTER_DIR/run/slurmd.pid; else pidfile=$CLUSTER_DIR/run/slurmd-$name.pid; fi
	if running "$pidfile"; then
		say "slurmd $name already running"
		continue
	fi
	if [ -n "${NODE_HOOK:-}" ]; then
		CLUSTER_DIR=$CLUSTER_DIR "$NODE_HOOK" "$name" "$ns" "$addr" || die "NODE_HOOK $NODE_HOOK failed for node $name"
	fi
	# slurmd -D keeps it in the foreground of a detached subshell: no daemonizing.
	if [ "$NODES" -eq 1 ]; then
		SDMTCP_NODE=$name setsid slurmd -D -f "$conf" </dev/null >>"$CLUSTER_DIR/log/slurmd.out" 2>&1 &
	else
		# nsenter and unshare exec (no fork), so the pid file holds the daemon's host pid.
		# Not "ip netns exec": it remounts /sys, and slurmd 22.05 then misses /sys/fs/cgroup.
		mkdir -p "$CLUSTER_DIR/spool/$name"
		# shellcheck disable=SC2016 # $1 and $2 are sh -c's own arguments
		SDMTCP_NODE=$name setsid nsenter --net="/run/netns/$ns" unshare --uts \
			sh -c 'hostname "$1" && exec slurmd -D -f "$2" -N "$1"' sh "$name" "$conf" \
			</dev/null >>"$CLUSTER_DIR/log/slurmd-$name.out" 2>&1 &
	fi
	say "started slurmd $name"
done <<<"$layout"

want=$(awk '{print $1}' "$statefile" | sort)
for _ in $(seq 1 60); do
	states=$(sinfo -h -N -o '%N %t' 2>/dev/null | sort -u || true)
	idle=$(awk '$2 == "idle" || $2 == "mix" || $2 == "alloc" {print $1}' <<<"$states" | sort)
	[ "$idle" = "$want" ] && break
	awk '$2 ~ /^(down|drain)/ {print $1}' <<<"$states" | while read -r n; do
		scontrol update NodeName="$n" State=RESUME >/dev/null 2>&1 || true
	done
	sleep 0.5
done
if [ "$NODES" -eq 1 ]; then
	state=$(awk '{print $2}' <<<"$states" | head -n 1)
	case "$state" in
	idle | mix | alloc) say "node $host is $state; export SLURM_CONF=$conf" ;;
	*) die "node $host did not become idle (state '$state'); see $CLUSTER_DIR/log/" ;;
	esac
else
	[ "$idle" = "$want" ] || die "not all $NODES nodes became idle ($(tr '\n' ' ' <<<"$states")); see $CLUSTER_DIR/log/"
	say "all $NODES nodes idle ($nodelist, controller $ctld_host port $CTLD_PORT); export SLURM_CONF=$conf"
fi
