#!/usr/bin/env bash
# Integration tests: bring up (or reuse) the one-node cluster with the freshly built plugin,
# then run real jobs against it. Needs root; otherwise says so in one line and stops, except
# in CI (CI=true), where anything that keeps tests from running fails the run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
strict=0
case "${CI:-}" in true | 1) strict=1 ;; esac
cannot() { # cannot WHAT: a SKIP line, or in CI a failure
	if [ "$strict" = 1 ]; then echo "FAIL (CI=true): $*"; exit 1; fi
	echo "SKIP $*"
	exit 0
}
if [ "$(id -u)" -ne 0 ]; then
	cannot "integration tests: they need root (to start slurmctld, slurmd and munged and submit as test users)"
fi
"$repo/contrib/cluster/cluster-up.sh"
if [ -z "${DMTCP_PREFIX:-}" ] && ! command -v dmtcp_launch >/dev/null && [ ! -x /opt/dmtcp/bin/dmtcp_launch ]; then
	echo "NOTE: DMTCP is not installed (DMTCP_PREFIX, PATH, /opt/dmtcp): tests that need it will SKIP"
fi
cd "$repo"
# SDMTCP_SUITE=security (make security): only the security tests, on both clusters.
# SDMTCP_SUITE=faults (make faults): only the fault campaign, SDMTCP_FAULT_TRIALS trials, and
# the requeue storm, SDMTCP_STORM_REQUEUES requeues.
# SDMTCP_SUITE=apps (make apps): only the compatibility suite of real programs (SDMTCP_APPS:
# all, or a comma-separated list; SDMTCP_APPS_SEED replays the requeue moments).
# The whole suite runs a bounded campaign of 10 trials unless told otherwise.
export SDMTCP_FAULT_TRIALS=${SDMTCP_FAULT_TRIALS:-10}
# and a requeue storm of 10 requeues of one Python driver (SDMTCP_STORM_REQUEUES).
export SDMTCP_STORM_REQUEUES=${SDMTCP_STORM_REQUEUES:-10}
timeout=30m
case "${SDMTCP_SUITE:-all}" in
all) one_run=. multi_run='TestStepAcrossNodes|TestStepOfTwoTasks|TestSecurityStepAcrossNodes'
	# Two programs of the compatibility suite (make apps runs them all): about 50 s.
	export SDMTCP_APPS=${SDMTCP_APPS:-openmp,multiprocessing}
	timeout=$((30 + SDMTCP_FAULT_TRIALS * 2 + SDMTCP_STORM_REQUEUES / 4))m
	log=${TMPDIR:-/tmp}/slurm-dmtcp-integration.log ;;
security) one_run='^TestSecurity' multi_run='^TestSecurityStepAcrossNodes'
	log=${TMPDIR:-/tmp}/slurm-dmtcp-security.log ;;
faults) one_run='^(TestFaultCampaign|TestRequeueStorm)$' multi_run=''
	timeout=$((10 + SDMTCP_FAULT_TRIALS * 2 + SDMTCP_STORM_REQUEUES / 4))m
	log=${TMPDIR:-/tmp}/slurm-dmtcp-faults.log ;;
apps) one_run='^TestApps$' multi_run='' timeout=60m
	export SDMTCP_APPS=${SDMTCP_APPS:-all}
	log=${TMPDIR:-/tmp}/slurm-dmtcp-apps.log ;;
*) echo "SDMTCP_SUITE=$SDMTCP_SUITE: expected all, security, faults or apps" >&2; exit 2 ;;
esac
rc=0
go test -tags integration -count=1 -timeout "$timeout" -v -run "$one_run" ./contrib/integration/ >"$log" 2>&1 || rc=$?
# The tests that need several nodes, on a 3-node cluster of their own (nodes in network
# namespaces, its own folder, ports and subnet), stopped afterwards. SDMTCP_MULTINODE=0 skips;
# MULTI_CLUSTER_DIR, MULTI_CTLD_PORT, MULTI_SLURMD_PORT, MULTI_NET_PREFIX, MULTI_FIRST_JOB_ID
# move it elsewhere (a second suite on the same host).
if [ "${SDMTCP_MULTINODE:-1}" = 1 ] && [ -n "$multi_run" ]; then
	(
		export CLUSTER_DIR=${MULTI_CLUSTER_DIR:-/var/tmp/slurm-dmtcp-it-multi} NODES=3
		export CTLD_PORT=${MULTI_CTLD_PORT:-19817} SLURMD_PORT=${MULTI_SLURMD_PORT:-19818}
		export NET_PREFIX=${MULTI_NET_PREFIX:-10.82.0} FIRST_JOB_ID=${MULTI_FIRST_JOB_ID:-800000}
		export SLURM_CONF=$CLUSTER_DIR/slurm.conf
		trap '"$repo/contrib/cluster/cluster-down.sh" >/dev/null 2>&1' EXIT
		if ! "$repo/contrib/cluster/cluster-up.sh" >"$log.multi-up" 2>&1; then
			cannot "multi-node tests: make cluster-up NODES=3 failed here: $(tail -n 1 "$log.multi-up")"
		fi
		echo "== multi-node tests (3 nodes in $CLUSTER_DIR)" >>"$log"
		go test -tags integration -count=1 -timeout 15m -v -run "$multi_run" ./contrib/integration/ >>"$log" 2>&1
	) || rc=$?
fi
# The verdict of each test, and the details of failures; the whole log stays in $log.
if [ "${SDMTCP_SUITE:-all}" = apps ]; then
	# One line per program and the tally (the details of failures stay in $log).
	grep -E '^(apps: |[a-z0-9-]+: (resumed|FAIL|SKIP)[ ,])|^(--- |ok |FAIL|panic)' "$log" || true
else
	grep -E '^(--- |    --- |PASS|FAIL|ok |panic|== |faults: |storm: |apps: |[a-z0-9-]+: (resumed|FAIL)[ ,])|SKIP|Error Trace|Error:|Messages:|expected|actual' "$log" || true
fi
# One tally line for the security suite: a test counts as passed when it passed on a cluster
# (a multi-node test skips on the one-node cluster) and failed when it failed on any.
case "${SDMTCP_SUITE:-all}" in faults | apps) ;; *) awk '/^--- (PASS|FAIL|SKIP): TestSecurity/ { v[$3] = v[$3] " " $2 }
END {
	for (t in v) { if (v[t] ~ /FAIL/) f++; else if (v[t] ~ /PASS/) p++; else s++ }
	printf "security: %d passed, %d failed, %d skipped\n", p, f, s
}' "$log" ;; esac
echo "integration log: $log"
exit "$rc"
