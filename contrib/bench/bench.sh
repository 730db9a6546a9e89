#!/usr/bin/env bash
# make bench: measure slurm-dmtcp on the one-node cluster with the freshly built plugin and
# print a table; JSON goes to build/bench.json. A benchmark, not a test: it never fails on
# the figures, only when something could not be measured.
#
# Environment (besides the cluster's own: CLUSTER_DIR, CTLD_PORT, SLURMD_PORT, SLURM_CONF):
#   BENCH_QUICK=1  fewer samples and short Go benchmarks (about a minute less)
#   BENCH_BIG=1    also checkpoint 1 GiB (with gzip this adds a minute or more)
#   BENCH_N=30     srun true samples per side;  BENCH_START_N=10  job start samples per side
#   BENCH_OUT=build/bench.json
#   BENCH_USER=sdmtcp  the user that submits the jobs
#   BENCH_ONLY=launch,start,checkpoint,sigterm,probe,gobench  run only these parts
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP bench: needs root (it starts or reuses the cluster, rewrites its plugstack.conf and submits as a test user)"
	exit 0
fi
export CLUSTER_DIR=${CLUSTER_DIR:-/var/tmp/slurm-dmtcp-cluster}
export SLURM_CONF=${SLURM_CONF:-$CLUSTER_DIR/slurm.conf}
"$repo/contrib/cluster/cluster-up.sh" >/dev/null
cd "$repo"
args=(-cluster-dir "$CLUSTER_DIR" -out "${BENCH_OUT:-build/bench.json}" -user "${BENCH_USER:-sdmtcp}"
	-n "${BENCH_N:-30}" -start-n "${BENCH_START_N:-10}")
[ -n "${DMTCP_PREFIX:-}" ] && args+=(-dmtcp-prefix "$DMTCP_PREFIX")
[ "${BENCH_QUICK:-0}" = 1 ] && args+=(-quick)
[ "${BENCH_BIG:-0}" = 1 ] && args+=(-big)
[ -n "${BENCH_ONLY:-}" ] && args+=(-only "$BENCH_ONLY")
go build -o build/bench ./contrib/bench
exec build/bench "${args[@]}"
