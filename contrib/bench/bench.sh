#!/usr/bin/env bash
# make bench: measure slurm-dmtcp on the one-node cluster with the freshly built plugin and
# print a table; JSON goes to build/bench.json. A benchmark, not a test: it never fails on
# the figures, only when something could not be measured.
#
# Environment (besides the cluster's own: CLUSTER_DIR, CTLD_PORT, SLURMD_PORT, SLURM_CONF):
#   BENCH_QUICK=1  fewer samples and short Go benchmarks (about a minute less)
#   BENCH_BIG=1    also checkpoint 1 GiB (with gzip this adds a minute or more)
#   BENCH_N=30     srun true samples per side;  BENCH_START_N=30  job start samples per side
#   BENCH_OUT=build/bench.json
#   BENCH_USER=sdmtcp  the user that submits the jobs
#   BENCH_ONLY=launch,start,checkpoint,sigterm,probe,gobench,nodes  run only these parts
#   "nodes" (steps across 1, 2, 4 nodes) runs on a 4-node cluster of its own, started and
#   stopped here: BENCH_NODES=4, BENCH_NODES_DIR, BENCH_NODES_CTLD_PORT (27817),
#   BENCH_NODES_SLURMD_PORT (27818), BENCH_NODES_NET (10.81.0), BENCH_NODES_KEEP=1,
#   BENCH_NODES_OUT=build/bench-nodes.json
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP bench: needs root (it starts or reuses the cluster, rewrites its plugstack.conf and submits as a test user)"
	exit 0
fi
cd "$repo"
go build -o build/bench ./contrib/bench
only=${BENCH_ONLY:-launch,start,checkpoint,sigterm,probe,gobench,nodes}
common=(-user "${BENCH_USER:-sdmtcp}" -n "${BENCH_N:-30}" -start-n "${BENCH_START_N:-30}")
[ -n "${DMTCP_PREFIX:-}" ] && common+=(-dmtcp-prefix "$DMTCP_PREFIX")
[ "${BENCH_QUICK:-0}" = 1 ] && common+=(-quick)
[ "${BENCH_BIG:-0}" = 1 ] && common+=(-big)
rc=0

# Everything but "nodes": on the one-node cluster (or the one in CLUSTER_DIR).
one=$(tr ',' '\n' <<<"$only" | grep -vx nodes | paste -sd, || true)
if [ -n "$one" ]; then
	(
		export CLUSTER_DIR=${CLUSTER_DIR:-/var/tmp/slurm-dmtcp-cluster}
		export SLURM_CONF=$CLUSTER_DIR/slurm.conf
		"$repo/contrib/cluster/cluster-up.sh" >/dev/null
		exec build/bench -cluster-dir "$CLUSTER_DIR" -out "${BENCH_OUT:-build/bench.json}" -only "$one" "${common[@]}"
	) || rc=$?
fi

# "nodes": steps across 1, 2 and 4 nodes on a 4-node cluster of its own (network
# namespaces, its own ports and subnet), stopped at the end (BENCH_NODES_KEEP=1 keeps it).
if tr ',' '\n' <<<"$only" | grep -qx nodes; then
	(
		export CLUSTER_DIR=${BENCH_NODES_DIR:-/var/tmp/slurm-dmtcp-benchnodes}
		export SLURM_CONF=$CLUSTER_DIR/slurm.conf NODES=${BENCH_NODES:-4}
		export CTLD_PORT=${BENCH_NODES_CTLD_PORT:-27817} SLURMD_PORT=${BENCH_NODES_SLURMD_PORT:-27818}
		export NET_PREFIX=${BENCH_NODES_NET:-10.81.0} FIRST_JOB_ID=${BENCH_NODES_FIRST_JOB_ID:-700000}
		[ "${BENCH_NODES_KEEP:-0}" = 1 ] || trap '"$repo/contrib/cluster/cluster-down.sh" >/dev/null 2>&1' EXIT
		"$repo/contrib/cluster/cluster-up.sh" >/dev/null
		build/bench -cluster-dir "$CLUSTER_DIR" -out "${BENCH_NODES_OUT:-build/bench-nodes.json}" -only nodes "${common[@]}"
	) || rc=$?
fi
exit "$rc"
