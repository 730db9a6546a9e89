#!/usr/bin/env bash
# Stop the cluster started by cluster-up.sh in $CLUSTER_DIR: its jobs, slurmd(s), slurmctld,
# the processes its jobs left, and (several nodes) its network namespaces, veth pairs and
# bridge. Nothing of another cluster on the same host is touched: there is no host-wide
# pkill; every process is found through this cluster's pid files, its node namespaces or
# its slurm.conf (see "Leftover processes" below).
# munged may serve other software on the host: it is stopped only with STOP_MUNGE=1.
# Safe to run twice. Environment: CLUSTER_DIR (default /var/tmp/slurm-dmtcp-cluster); the
# rest is read from what cluster-up.sh wrote there ($CLUSTER_DIR/slurm.conf, run/nodes,
# run/net; NETNS_PREFIX only if cluster-up was given one and run/nodes is gone).
# Exit status 1, with what is left, when something of the cluster could not be removed.
set -uo pipefail
CLUSTER_DIR=${CLUSTER_DIR:-/var/tmp/slurm-dmtcp-cluster}
conf=$CLUSTER_DIR/slurm.conf
statefile=$CLUSTER_DIR/run/nodes
netfile=$CLUSTER_DIR/run/net
say() { printf 'cluster-down: %s\n' "$*"; }
# freeze_kill PID...: SIGSTOP, then SIGKILL, so that none forks or is reparented between.
freeze_kill() {
	kill -STOP "$@" 2>/dev/null
	kill -KILL "$@" 2>/dev/null
}

[ "$(id -u)" -eq 0 ] || { say "error: run as root"; exit 1; }

confval() { [ -f "$conf" ] && sed -n "s/^$1=//p" "$conf" | head -n 1; }
ctld_port=$(confval SlurmctldPort)
slurmd_port=$(confval SlurmdPort)

# alive PID: running and not a zombie (a dead daemon stays a zombie until init reaps it).
alive() {
	local line rest
	read -r line <"/proc/$1/stat" 2>/dev/null || return 1
	rest=${line##*) }
	[ "${rest%% *}" != Z ]
}

# stop_pidfiles SECONDS NAME=FILE...: SIGTERM to all at once, SIGKILL to those still
# running SECONDS later.
stop_pidfiles() {
	local grace=$1 arg name file pid pending="" still
	shift
	for arg in "$@"; do
		name=${arg%%=*} file=${arg#*=}
		pid=$(cat "$file" 2>/dev/null)
		if [ -n "$pid" ] && alive "$pid"; then
			kill "$pid" && pending="$pending $pid:$name"
		else
			say "$name not running"
		fi
	done
	for _ in $(seq 1 $((grace * 10))); do
		still=""
		for arg in $pending; do alive "${arg%%:*}" && still="$still $arg"; done
		[ -n "$still" ] || break
		sleep 0.1
	done
	for arg in $pending; do
		if alive "${arg%%:*}" && kill -9 "${arg%%:*}" 2>/dev/null; then
			say "killed ${arg#*:} (${arg%%:*}): still running $grace s after SIGTERM"
		else
			say "stopped ${arg#*:} (${arg%%:*})"
		fi
	done
	for arg in "$@"; do rm -f "${arg#*=}"; done
}

# 1. Jobs: cancelled while slurmctld still answers, so that its saved state holds none.
if [ -f "$conf" ] && [ -f "$CLUSTER_DIR/run/slurmctld.pid" ] && kill -0 "$(cat "$CLUSTER_DIR/run/slurmctld.pid")" 2>/dev/null; then
	jobs=$(SLURM_CONF=$conf timeout 10 squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ')
	if [ -n "${jobs// /}" ]; then
		# shellcheck disable=SC2086 # one argument per job id
		SLURM_CONF=$conf timeout 10 scancel --full --quiet $jobs 2>/dev/null || true
		say "cancelled jobs $jobs"
	fi
fi

# 2. Daemons, by their pid files (slurmd.pid with one node, slurmd-<node>.pid with several):
# the slurmd all at once, 2 s to stop (one still ending cancelled steps takes longer; its
# steps are swept below), then slurmctld, 5 s to save its state.
daemons=()
for f in "$CLUSTER_DIR"/run/slurmd.pid "$CLUSTER_DIR"/run/slurmd-*.pid; do
	[ -e "$f" ] || continue
	n=${f##*/slurmd}; n=${n%.pid}; n=${n#-}
	daemons+=("slurmd${n:+_$n}=$f")
done
if [ ${#daemons[@]} -gt 0 ]; then stop_pidfiles 2 "${daemons[@]}"; else say "slurmd not running"; fi
stop_pidfiles 5 "slurmctld=$CLUSTER_DIR/run/slurmctld.pid"

# 3. Several nodes: everything inside each node's network namespace (slurmstepd, jobs, the
# agents and coordinators, whatever they forked: a process cannot leave a network namespace
# without root's setns), then the namespace, its veth pair and the bridge. The names come
# from run/nodes and run/net, else from cluster-up's defaults for this SlurmctldPort.
namespaces=""
veths=""
bridge=""
if [ -f "$statefile" ]; then
	namespaces=$(awk '$2 != "-" {print $2}' "$statefile")
	veths=$(awk '$3 != "-" {print $3}' "$statefile")
fi
[ -f "$netfile" ] && bridge=$(sed -n 's/^bridge=//p' "$netfile")
if [ -n "$ctld_port" ]; then
	prefix=${NETNS_PREFIX:-sdmtcp-$ctld_port-}
	for f in /run/netns/"$prefix"n*; do [ -e "$f" ] && namespaces="$namespaces"$'\n'"${f##*/}"; done
	for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -x "sdv${ctld_port}n[0-9]*"); do
		veths="$veths"$'\n'"$l"
	done
	if [ -z "$bridge" ] && ip link show "sdbr$ctld_port" >/dev/null 2>&1; then bridge=sdbr$ctld_port; fi
fi
for ns in $(printf '%s\n' "$namespaces" | sort -u); do
	[ -e "/run/netns/$ns" ] || continue
	for _ in $(seq 1 50); do
		pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
		[ -n "${pids// /}" ] || break
		# shellcheck disable=SC2086 # one argument per pid
		freeze_kill $pids
		say "killed in $ns: $pids"
		sleep 0.1
	done
	ip netns del "$ns" && say "deleted network namespace $ns"
done
for v in $(printf '%s\n' "$veths" | sort -u); do
	ip link show "$v" >/dev/null 2>&1 && ip link del "$v" && say "deleted veth $v"
done
if [ -n "$bridge" ] && ip link show "$bridge" >/dev/null 2>&1; then
	ip link del "$bridge" && say "deleted bridge $bridge"
fi

# 4. Leftover processes in the host's namespaces (the one-node cluster, or anything of a
# multi-node cluster's jobs that ran on the host). Steps outlive slurmd, and jobs'
# processes can leave their step (a --daemon coordinator, an orphaned batch script, an
# agent's coordinator once the agent is gone), so the parent chain alone does not find
# them. Seeds, each precise to this cluster:
#   - a slurmstepd holding this cluster's slurmd log file ($CLUSTER_DIR/log/slurmd*.log)
#     open: every slurmstepd logs there. (Its environment cannot tell: slurmstepd writes
#     its process title over it.)
#   - a process whose environment holds SLURM_CONF=<this cluster's slurm.conf> and also
#     SLURM_JOB_ID (a process of one of its jobs, wherever it moved), or whose executable
#     is slurm-dmtcp-agent or dmtcp_coordinator (the plugin gives the agent the job's
#     SLURM_CONF; the coordinator inherits it);
# then every process whose parent chain leads to a seed. A user's shell or srun/sbatch
# client that merely has SLURM_CONF set is not matched (no SLURM_JOB_ID; an salloc shell
# is, being a job's), nor is a "tail -f" of the log; a dmtcp_coordinator started by hand
# from a shell with this SLURM_CONF exported is. Zombies are not matched (they hold
# nothing and go when reaped). This script and its ancestors are never matched.
cluster_procs() {
	local f p line rest seeds="" exe
	local -A parent=() mine=() skip=()
	skip[$BASHPID]=1
	p=$$
	while [ -n "$p" ] && [ "$p" != 0 ]; do
		skip[$p]=1
		read -r line <"/proc/$p/stat" 2>/dev/null || break
		rest=${line##*) }
		# shellcheck disable=SC2086 # the fields of /proc/PID/stat after the command name
		set -- $rest
		p=$2
	done
	while read -r p; do
		[ -n "${skip[$p]:-}" ] && continue
		exe=$(readlink "/proc/$p/exe" 2>/dev/null); exe=${exe##*/}
		case "$exe" in slurmstepd*) seeds="$seeds $p" ;; esac
	done < <(find /proc/[0-9]*/fd -maxdepth 1 -lname "$CLUSTER_DIR/log/slurmd*.log" 2>/dev/null | cut -d/ -f3 | sort -u)
	while read -r f; do
		p=${f#/proc/}; p=${p%/environ}
		[ -n "${skip[$p]:-}" ] && continue
		exe=$(readlink "/proc/$p/exe" 2>/dev/null); exe=${exe##*/}
		if grep -qz '^SLURM_JOB_ID=' "$f" 2>/dev/null; then
			seeds="$seeds $p"
		else
			case "$exe" in slurm-dmtcp-agent | dmtcp_coordinator) seeds="$seeds $p" ;; esac
		fi
	done < <(grep -lzxF "SLURM_CONF=$conf" /proc/[0-9]*/environ 2>/dev/null)
	for p in $seeds; do mine[$p]=1; done
	[ -n "$seeds" ] || return 0
	for f in /proc/[0-9]*/stat; do
		read -r line <"$f" 2>/dev/null || continue
		rest=${line##*) }
		# shellcheck disable=SC2086 # the fields of /proc/PID/stat after the command name
		set -- $rest
		p=${f#/proc/}; p=${p%/stat}
		[ "$1" = Z ] && { unset "mine[$p]"; continue; }
		parent[$p]=$2
	done
	local changed=1 q
	while [ "$changed" = 1 ]; do
		changed=0
		for p in "${!parent[@]}"; do
			[ -n "${mine[$p]:-}" ] && continue
			q=${parent[$p]}
			if [ -n "${mine[$q]:-}" ] && [ -z "${skip[$p]:-}" ]; then mine[$p]=1; changed=1; fi
		done
	done
	echo "${!mine[@]}"
}
if [ -f "$conf" ]; then
	for _ in 1 2 3 4 5; do
		pids=$(cluster_procs)
		[ -n "$pids" ] || break
		# shellcheck disable=SC2086 # one argument per pid
		freeze_kill $pids
		say "killed leftover processes of this cluster: $pids"
		sleep 0.2
	done
fi

if [ "${STOP_MUNGE:-0}" = 1 ] && pkill -x munged; then say "stopped munged"; fi

# 5. What is left: reported, and the layout files kept so that a second run retries.
left=""
for ns in $(printf '%s\n' "$namespaces" | sort -u); do [ -e "/run/netns/$ns" ] && left="$left netns:$ns"; done
for v in $(printf '%s\n' "$veths" | sort -u); do ip link show "$v" >/dev/null 2>&1 && left="$left link:$v"; done
[ -n "$bridge" ] && ip link show "$bridge" >/dev/null 2>&1 && left="$left link:$bridge"
for port in $ctld_port $slurmd_port; do
	ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && left="$left port:$port"
done
if [ -f "$conf" ]; then
	pids=$(cluster_procs)
	[ -n "$pids" ] && left="$left pids:$pids"
fi
if [ -n "$left" ]; then
	say "still there:$left"
	exit 1
fi
rm -f "$statefile" "$netfile"
say "nothing of the cluster in $CLUSTER_DIR is left"
exit 0
