#!/usr/bin/env bash
# Stop the cluster started by cluster-up.sh: slurmd, slurmctld and what their jobs left.
# munged may serve other software on the host: it is stopped only with STOP_MUNGE=1.
# Safe to run twice.
set -uo pipefail
CLUSTER_DIR=${CLUSTER_DIR:-/var/tmp/slurm-dmtcp-cluster}
say() { printf 'cluster-down: %s\n' "$*"; }

stop_pidfile() {
	local name=$1 file=$2 pid
	[ -f "$file" ] || { say "$name not running"; return; }
	pid=$(cat "$file")
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid"
		for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
		say "stopped $name ($pid)"
	else
		say "$name not running"
	fi
	rm -f "$file"
}

if [ -f "$CLUSTER_DIR/slurm.conf" ]; then
	SLURM_CONF=$CLUSTER_DIR/slurm.conf scancel --full --quiet --user=sdmtcp --user=sdmtcp2 2>/dev/null || true
fi
stop_pidfile slurmd "$CLUSTER_DIR/run/slurmd.pid"
stop_pidfile slurmctld "$CLUSTER_DIR/run/slurmctld.pid"
# Steps whose slurmd is gone, and anything the plugin started for them.
pkill -9 -f "slurmstepd: \[" 2>/dev/null && say "killed leftover slurmstepd processes"
pkill -9 -f slurm-dmtcp-agent 2>/dev/null && say "killed leftover agents"
if [ "${STOP_MUNGE:-0}" = 1 ] && pkill -x munged; then say "stopped munged"; fi
exit 0
