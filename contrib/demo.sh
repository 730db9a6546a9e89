#!/usr/bin/env bash
# make demo: what slurm-dmtcp is for, in about a minute, as root on Debian. It starts the
# one-node cluster with the freshly built plugin and submits, as a regular user, a
# `#SBATCH --dmtcp` job: a Python driver whose state lives only in memory. The job takes
# periodic checkpoints, `dmtcpctl status` shows them, the job is requeued as a preemption
# would, it resumes from its newest checkpoint, and its result is checked against an
# uninterrupted run of the same driver.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
user=${DEMO_USER:-sdmtcp}
steps=${DEMO_STEPS:-80}
say() { printf '\n== %s\n' "$*"; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }
indent() { sed 's/^/    /'; }

[ "$(id -u)" -eq 0 ] || die "run as root: it installs Slurm packages and starts a cluster"
dmtcp_prefix=${DMTCP_PREFIX:-}
if [ -z "$dmtcp_prefix" ]; then
	if p=$(command -v dmtcp_launch 2>/dev/null); then dmtcp_prefix=$(cd "$(dirname "$p")/.." && pwd)
	elif [ -x /opt/dmtcp/bin/dmtcp_launch ]; then dmtcp_prefix=/opt/dmtcp; fi
fi
[ -n "$dmtcp_prefix" ] && [ -x "$dmtcp_prefix/bin/dmtcp_launch" ] || die "DMTCP is not installed: \
looked in \$DMTCP_PREFIX, PATH and /opt/dmtcp. Debian has no package: build it from its upstream \
source (./configure --prefix=/opt/dmtcp && make && make install), or point DMTCP_PREFIX=/path at an install."

say "Starting the one-node cluster (this demo allows checkpoint intervals down to 5 s: min_interval=5)"
export CLUSTER_DIR=${CLUSTER_DIR:-/var/tmp/slurm-dmtcp-cluster}
DMTCP_PREFIX=$dmtcp_prefix PLUGSTACK_ARGS="min_interval=5 ${PLUGSTACK_ARGS:-}" \
	"$repo/contrib/cluster/cluster-up.sh" | indent
export SLURM_CONF=$CLUSTER_DIR/slurm.conf
dmtcpctl=$CLUSTER_DIR/bin/dmtcpctl
[ -x "$dmtcpctl" ] || dmtcpctl=$repo/build/dmtcpctl
as_user() { runuser -u "$user" -- "$@"; }

work=$(mktemp -d /tmp/slurm-dmtcp-demo.XXXXXX)
chmod 0755 "$work"
chown "$user:" "$work"
cat >"$work/driver.py" <<'PY'
# A driver whose whole state is in memory: a running digest over the steps it has done.
# Killed and started again from the top, it would redo everything; restored, it goes on.
import hashlib, os, sys, time
steps, delay = int(sys.argv[1]), float(os.environ.get("DEMO_DELAY", "0.5"))
digest = hashlib.sha256(b"slurm-dmtcp demo")
for step in range(1, steps + 1):
    digest.update(str(step * step).encode())
    print(f"step {step}/{steps} {digest.hexdigest()[:12]}", flush=True)
    time.sleep(delay)
print(f"result {digest.hexdigest()}", flush=True)
PY
cat >"$work/demo-job.sh" <<JOB
#!/bin/bash
#SBATCH --dmtcp
#SBATCH --dmtcp-interval=10s
#SBATCH --job-name=dmtcp-demo
#SBATCH --open-mode=append
python3 driver.py $steps
JOB
chown "$user:" "$work"/*
say "The job script (as user $user): a Python driver with its state in memory"
indent <"$work/demo-job.sh"
id=$(cd "$work" && as_user sbatch --parsable -o "$work/out" -e "$work/err" demo-job.sh)
echo "submitted job $id"

# wait_for FILE PATTERN SECONDS: until a line of FILE matches.
wait_for() {
	for _ in $(seq 1 $(($3 * 5))); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.2; done
	die "waited $3 s for '$2' in $1; the job's files are in $work, Slurm's logs in $CLUSTER_DIR/log"
}
job_state() { scontrol show job "$id" -o 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }

say "Waiting for two periodic checkpoints"
wait_for "$work/err" 'checkpoint \(periodic\) generation 2' 60
grep 'slurm-dmtcp:' "$work/err" | indent
say "dmtcpctl --job $id status (what a user sees from a login node)"
as_user "$dmtcpctl" --job "$id" status | indent

before=$(grep -c '^step ' "$work/out")
say "Requeueing the job (scontrol requeue $id), as a preemption would; it was at step $before"
scontrol requeue "$id"
for _ in $(seq 1 300); do [ "$(job_state)" = COMPLETED ] && break; sleep 0.5; done
state=$(job_state)
say "The job ended: $state; what slurm-dmtcp said in its error file"
grep 'slurm-dmtcp:' "$work/err" | indent
[ "$state" = COMPLETED ] || die "job $id ended $state, not COMPLETED; see $work/err"

say "Checking the result against an uninterrupted run of the same driver (no Slurm, no DMTCP)"
want=$(DEMO_DELAY=0 python3 "$work/driver.py" "$steps" | sed -n 's/^result //p')
got=$(sed -n 's/^result //p' "$work/out")
firsts=$(grep -c "^step 1/" "$work/out")
resumed=$(grep -oE 'restoring generation [0-9]+' "$work/err" | tail -n 1)
echo "    uninterrupted: $want"
echo "    this job:      $got"
[ -n "$got" ] && [ "$got" = "$want" ] || die "the results differ; see $work/out"
[ "$firsts" -eq 1 ] || die "the driver started from step 1 again ($firsts times); see $work/out"
[ -n "$resumed" ] || die "no restore is reported in $work/err"
echo "    same result; the job went on from its checkpoint ($resumed), never from step 1"
echo
echo "Done. The job's files are in $work; 'make cluster-down' stops the cluster."
