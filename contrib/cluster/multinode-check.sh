#!/usr/bin/env bash
# Check and time the multi-node cluster of cluster-up.sh: for each size in CHECK_NODES
# (default "2 3") bring a cluster up, check that srun -N2 and an sbatch -N2 job's inner
# srun run on two different nodes (and srun -N3 on three), bring it down with a job
# running, and check that nothing of it is left (ip netns list, ip link, ss -ltnp, ps).
# CHECK_NODES may include 1: the one-node cluster, teardown checks only. Prints one PASS/FAIL line per check and the
# timings; exit status 1 if any check failed.
#
# Run as root. It starts and stops its own cluster, by default apart from the default one:
#   CLUSTER_DIR  (default /var/tmp/slurm-dmtcp-multicheck), CTLD_PORT (26817),
#   SLURMD_PORT (26818), FIRST_JOB_ID (900000), NET_PREFIX (10.78.0)
# It refuses to run when a cluster is already running in CLUSTER_DIR (it would stop it).
# The jobs run as the first of TEST_USERS (default sdmtcp).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export CLUSTER_DIR=${CLUSTER_DIR:-/var/tmp/slurm-dmtcp-multicheck}
export CTLD_PORT=${CTLD_PORT:-26817} SLURMD_PORT=${SLURMD_PORT:-26818}
export FIRST_JOB_ID=${FIRST_JOB_ID:-900000} NET_PREFIX=${NET_PREFIX:-10.78.0}
export SLURM_CONF=$CLUSTER_DIR/slurm.conf
user=${TEST_USERS:-sdmtcp}
user=${user%% *}
CHECK_NODES=${CHECK_NODES:-2 3}

[ "$(id -u)" -eq 0 ] || { echo "SKIP multinode-check: needs root (it starts slurmctld and slurmd in namespaces)"; exit 0; }
if [ -f "$CLUSTER_DIR/run/slurmctld.pid" ] && kill -0 "$(cat "$CLUSTER_DIR/run/slurmctld.pid")" 2>/dev/null; then
	echo "multinode-check: a cluster is running in $CLUSTER_DIR; it would be stopped: use another CLUSTER_DIR or stop it first" >&2
	exit 2
fi

fails=0
pass() { printf 'PASS %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; fails=$((fails + 1)); }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}'; }

work=$(runuser -u "$user" -- mktemp -d /tmp/multinode-check.XXXXXX) || { echo "cannot make a folder as $user" >&2; exit 2; }
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
timings=""

for n in $CHECK_NODES; do
	echo "== $n nodes"
	t=$(now)
	if ! NODES=$n "$here/cluster-up.sh" >"$work/up.log" 2>&1; then
		fail "cluster-up NODES=$n: $(tail -n 3 "$work/up.log")"
		"$here/cluster-down.sh" >/dev/null 2>&1
		continue
	fi
	up=$(since "$t")
	pass "cluster-up NODES=$n: $(tail -n 1 "$work/up.log" | sed 's/^cluster-up: //') in $up s"

	if [ "$n" -ge 2 ]; then
		# srun -N2 from the host: two tasks, two different host names.
		names=$(cd "$work" && runuser -u "$user" -- env SLURM_CONF="$SLURM_CONF" timeout 30 srun -N2 hostname 2>&1 | sort)
		if [ "$(sort -u <<<"$names" | grep -c .)" = 2 ]; then
			pass "srun -N2 hostname: $(paste -sd ' ' <<<"$names")"
		else
			fail "srun -N2 hostname: $(paste -sd ' ' <<<"$names")"
		fi

		# An sbatch -N2 job whose batch script calls srun -N2 from inside node n1's namespace.
		job=$(cd "$work" && runuser -u "$user" -- env SLURM_CONF="$SLURM_CONF" sbatch --parsable -N2 -o "$work/job-%j.out" \
			--wrap "echo \"batch on \$(hostname)\"; srun -N2 hostname | sort | sed 's/^/step on /'" 2>&1)
		state=""
		for _ in $(seq 1 60); do
			state=$(scontrol show job "$job" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
			case "$state" in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) break ;; esac
			sleep 0.5
		done
		out=$(cat "$work/job-$job.out" 2>/dev/null)
		steps=$(sed -n 's/^step on //p' <<<"$out" | sort -u | grep -c .)
		if [ "$state" = COMPLETED ] && [ "$steps" = 2 ]; then
			pass "sbatch -N2 job $job ($state): $(paste -sd ';' <<<"$out")"
		else
			fail "sbatch -N2 job $job (${state:-no state}): $(paste -sd ';' <<<"$out")"
		fi
	fi

	if [ "$n" -ge 3 ]; then
		names=$(cd "$work" && runuser -u "$user" -- env SLURM_CONF="$SLURM_CONF" timeout 30 srun -N"$n" hostname 2>&1 | sort)
		if [ "$(sort -u <<<"$names" | grep -c .)" = "$n" ]; then
			pass "srun -N$n hostname: $(paste -sd ' ' <<<"$names")"
		else
			fail "srun -N$n hostname: $(paste -sd ' ' <<<"$names")"
		fi
	fi

	# Teardown, with a job still running on every node, and one process that left the job
	# (double fork: Slurm's proctrack/linuxproc loses it, scancel does not reach it).
	# Its sleeps are named mark (exec -a) so that ps finds them.
	mark=multinode-check-$CTLD_PORT
	(cd "$work" && runuser -u "$user" -- env SLURM_CONF="$SLURM_CONF" sbatch -N"$n" -o /dev/null \
		--wrap "setsid bash -c '(exec -a $mark sleep 600) &'; srun -N$n bash -c 'exec -a $mark sleep 600'" >/dev/null 2>&1)
	for _ in $(seq 1 20); do
		[ "$(pgrep -fc -- "$mark")" -ge $((n + 1)) ] && break
		sleep 0.25
	done
	t=$(now)
	if "$here/cluster-down.sh" >"$work/down.log" 2>&1; then
		down=$(since "$t")
		killed=$(sed -n 's/^cluster-down: killed in [^:]*: //p; s/^cluster-down: killed leftover processes of this cluster: //p' "$work/down.log" | wc -w)
		pass "cluster-down (a job running on $n node(s); $killed leftover processes killed after the daemons) in $down s"
	else
		down=$(since "$t")
		fail "cluster-down: $(paste -sd ';' "$work/down.log")"
	fi
	timings="$timings nodes=$n up=${up}s down=${down}s;"

	# Nothing of it is left. Killed processes stay zombies until init reaps them: a few s.
	left=""
	for _ in $(seq 1 20); do
		left=""
		ns=$(ip netns list 2>/dev/null | grep "^sdmtcp-$CTLD_PORT-")
		[ -z "$ns" ] || left="$left netns:[$(paste -sd ' ' <<<"$ns")]"
		links=$(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | grep -E "^(sdv${CTLD_PORT}n[0-9]+|sdbr$CTLD_PORT)(@|$)")
		[ -z "$links" ] || left="$left links:[$(paste -sd ' ' <<<"$links")]"
		ports=$(ss -Hltnp "( sport = :$CTLD_PORT or sport = :$SLURMD_PORT )" 2>/dev/null)
		[ -z "$ports" ] || left="$left ports:[$(paste -sd ' ' <<<"$ports")]"
		procs=$(pgrep -af -- "$CLUSTER_DIR|$mark")
		[ -z "$procs" ] || left="$left ps:[$(paste -sd ';' <<<"$procs")]"
		[ -n "$left" ] || break
		sleep 0.5
	done
	if [ -z "$left" ]; then
		pass "after cluster-down: no netns, link, listening port or process of the cluster"
	else
		fail "after cluster-down, still there:$left"
	fi
	if "$here/cluster-down.sh" >"$work/down2.log" 2>&1; then
		pass "cluster-down again: $(tail -n 1 "$work/down2.log" | sed 's/^cluster-down: //')"
	else
		fail "cluster-down again: $(paste -sd ';' "$work/down2.log")"
	fi
done

echo "timings:$timings"
if [ "$fails" -gt 0 ]; then
	echo "multinode-check: $fails check(s) failed"
	exit 1
fi
echo "multinode-check: all checks passed"
