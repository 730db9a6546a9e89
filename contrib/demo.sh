#!/usr/bin/env bash
# make demo: one command, as root on Debian: start the one-node cluster with the freshly
# built plugin, submit a small job with --dmtcp as a regular user, and show it running under
# DMTCP: the coordinator's process list, a checkpoint, the checkpoint folder.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
user=${DEMO_USER:-sdmtcp}
say() { printf '\n== %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root: it installs Slurm packages and starts a cluster"
dmtcp_prefix=${DMTCP_PREFIX:-}
if [ -z "$dmtcp_prefix" ]; then
	if p=$(command -v dmtcp_launch 2>/dev/null); then dmtcp_prefix=$(cd "$(dirname "$p")/.." && pwd)
	elif [ -x /opt/dmtcp/bin/dmtcp_launch ]; then dmtcp_prefix=/opt/dmtcp; fi
fi
[ -n "$dmtcp_prefix" ] && [ -x "$dmtcp_prefix/bin/dmtcp_launch" ] || die "DMTCP is not installed: \
looked in \$DMTCP_PREFIX, PATH and /opt/dmtcp. Debian has no package: build it from its upstream \
source (./configure --prefix=/opt/dmtcp && make && make install), or point DMTCP_PREFIX=/path at an install."

say "Starting the one-node cluster"
DMTCP_PREFIX=$dmtcp_prefix "$repo/contrib/cluster/cluster-up.sh"
export SLURM_CONF=${CLUSTER_DIR:-/var/tmp/slurm-dmtcp-cluster}/slurm.conf

work=$(mktemp -d /tmp/slurm-dmtcp-demo.XXXXXX)
chown "$user:" "$work"
cat >"$work/counter.sh" <<'JOB'
#!/bin/bash
#SBATCH --dmtcp
#SBATCH --job-name=dmtcp-demo
echo "running as pid $$ (a DMTCP virtual pid), coordinator port $SLURM_DMTCP_COORD_PORT"
echo "checkpoints go to $SLURM_DMTCP_CKPTDIR"
for i in $(seq 1 20); do echo "step $i"; sleep 1; done
JOB
chmod 0755 "$work/counter.sh"
say "Submitting as $user: sbatch counter.sh (the script says #SBATCH --dmtcp)"
sed 's/^/    /' "$work/counter.sh"
id=$(cd "$work" && runuser -u "$user" -- sbatch --parsable -o "$work/out" counter.sh)
echo "job $id submitted"
for _ in $(seq 1 100); do grep -q "coordinator port" "$work/out" 2>/dev/null && break; sleep 0.2; done
grep -q "coordinator port" "$work/out" || die "the job did not start; see $work/out and ${SLURM_CONF%/*}/log/"
port=$(sed -n 's/.*coordinator port \([0-9]*\).*/\1/p' "$work/out")
sleep 2
say "The job's output so far"
sed 's/^/    /' "$work/out"
say "The job's own DMTCP coordinator lists its processes (dmtcp_command -l)"
runuser -u "$user" -- "$dmtcp_prefix/bin/dmtcp_command" -h 127.0.0.1 -p "$port" -l | sed 's/^/    /'
say "Taking a checkpoint (dmtcp_command -bc)"
runuser -u "$user" -- "$dmtcp_prefix/bin/dmtcp_command" -h 127.0.0.1 -p "$port" -bc
home=$(getent passwd "$user" | cut -d: -f6)
say "Checkpoint folder $home/.slurm-dmtcp/$id/batch"
ls -l "$home/.slurm-dmtcp/$id/batch" "$home/.slurm-dmtcp/$id/batch/current" | sed 's/^/    /'
say "The agent's log"
sed 's/^/    /' "$home/.slurm-dmtcp/$id/batch/agent.log"
say "Waiting for the job to finish"
for _ in $(seq 1 60); do
	state=$(scontrol show job "$id" -o 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
	case "$state" in COMPLETED | FAILED | CANCELLED | TIMEOUT) break ;; esac
	sleep 1
done
echo "job $id: $state"
tail -n 3 "$work/out" | sed 's/^/    /'
echo
echo "Done. Output in $work/out; 'make cluster-down' stops the cluster."
