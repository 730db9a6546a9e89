#!/usr/bin/env bash
# Integration tests: bring up (or reuse) the one-node cluster with the freshly built plugin,
# then run real jobs against it. Needs root; otherwise says so in one line and stops.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP integration tests: they need root (to start slurmctld, slurmd and munged and submit as test users)"
	exit 0
fi
"$repo/contrib/cluster/cluster-up.sh"
if [ -z "${DMTCP_PREFIX:-}" ] && ! command -v dmtcp_launch >/dev/null && [ ! -x /opt/dmtcp/bin/dmtcp_launch ]; then
	echo "NOTE: DMTCP is not installed (DMTCP_PREFIX, PATH, /opt/dmtcp): tests that need it will SKIP"
fi
cd "$repo"
log=${TMPDIR:-/tmp}/slurm-dmtcp-integration.log
rc=0
go test -tags integration -count=1 -timeout 30m -v ./contrib/integration/ >"$log" 2>&1 || rc=$?
# The verdict of each test, and the details of failures; the whole log stays in $log.
grep -E '^(--- |    --- |PASS|FAIL|ok |panic)|SKIP|Error Trace|Error:|Messages:|expected|actual' "$log" || true
echo "integration log: $log"
exit "$rc"
