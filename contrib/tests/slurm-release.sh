#!/usr/bin/env bash
# Build and test slurm-dmtcp against another Slurm release than the host's: inside a Debian
# root made with debootstrap, whose own Slurm packages are that release.
#
#   contrib/tests/slurm-release.sh 24.11        (make test SLURM=24.11)
#   contrib/tests/slurm-release.sh 24.11 shell  a root shell inside, in the same setup
#
# Release -> Debian suite: 24.11 trixie (the host's own 22.05 is make test). The root is
# $SDMTCP_ROOT (default /var/tmp/sdmtcp-<suite>); it is created when missing (debootstrap,
# from the mirror apt uses on this machine, else deb.debian.org) and the packages the build
# and the tests need are installed in it with its own apt-get.
#
# DMTCP is not installed by this script: Debian has no package for it, and it must be
# built against the root's own C library. When <root>/opt/dmtcp/bin/dmtcp_launch is missing,
# one SKIP line (FAIL with CI=true) says what to run.
#
# Inside, in a mount and pid namespace of their own (everything started there, cluster
# daemons included, ends with it; nothing is mounted on the host afterwards):
#   /proc of its own, /dev, /sys, a fresh /run (its own munged socket and key),
#   the checkout at the same path, with <root>/var/lib/slurm-dmtcp/build over its build/
#   (binaries of the root's C library never mix with the host's), Go from the host
#   (GOROOT, read-only) and the host's Go module cache (read-only, GOPROXY=off).
# Then: make all unit-test c-test python-test, and the integration suite on a one-node
# cluster of its own (CLUSTER_DIR, CTLD_PORT, SLURMD_PORT, FIRST_JOB_ID below), and, with
# SDMTCP_MULTINODE=1, the 3-node tests (ports MULTI_CTLD_PORT/+1, subnet MULTI_NET_PREFIX).
# Logs stay in the root: <root>/tmp/slurm-dmtcp-integration.log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
release=${1:-${SLURM:-}}
mode=${2:-test}
strict=0
case "${CI:-}" in true | 1) strict=1 ;; esac
say() { printf 'slurm-release: %s\n' "$*"; }
die() { printf 'slurm-release: error: %s\n' "$*" >&2; exit 1; }
cannot() { # cannot WHAT: one SKIP line, or in CI a failure
	if [ "$strict" = 1 ]; then echo "FAIL (CI=true): $*"; exit 1; fi
	echo "SKIP $*"
	exit 0
}

case "$release" in
24.11) suite=trixie ;;
'') die "which Slurm release? contrib/tests/slurm-release.sh 24.11 (or make test SLURM=24.11)" ;;
*) die "Slurm $release: no Debian suite known for it (known: 24.11, Debian trixie; 22.05 is the host's: make test)" ;;
esac
case "$mode" in test | shell) ;; *) die "mode $mode: expected test or shell" ;; esac
[ "$(id -u)" -eq 0 ] || cannot "Slurm $release tests: they need root (debootstrap, chroot, mounts)"
for c in unshare chroot mount; do command -v "$c" >/dev/null || die "$c not found (util-linux, coreutils)"; done

root=${SDMTCP_ROOT:-/var/tmp/sdmtcp-$suite}
goroot=${GOROOT:-$(go env GOROOT 2>/dev/null || true)}
gomodcache=${GOMODCACHE:-$(go env GOMODCACHE 2>/dev/null || true)}
[ -n "$goroot" ] && [ -x "$goroot/bin/go" ] || die "no Go toolchain on the host (go.mod needs $(sed -n 's/^go //p' "$repo/go.mod")); it is used inside the root too"

# The mirror apt already uses here (deb822 or one-line sources), else Debian's own.
mirror() {
	local m
	m=$(sed -n 's/^URIs:[[:space:]]*\(http[^ ]*\/debian\)\/\{0,1\}$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
	[ -n "$m" ] || m=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null)
	echo "${m:-http://deb.debian.org/debian}"
}

# 1. The root.
if [ ! -x "$root/usr/bin/apt-get" ]; then
	if ! command -v debootstrap >/dev/null; then
		say "installing debootstrap"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null ||
			die "apt-get install debootstrap failed"
	fi
	m=${MIRROR:-$(mirror)}
	say "creating a Debian $suite root in $root from $m (about a minute)"
	debootstrap --variant=minbase "$suite" "$root" "$m" >"$root.debootstrap.log" 2>&1 ||
		die "debootstrap $suite $root $m failed; see $root.debootstrap.log"
fi
# Names resolve inside as on the host: slurm.conf names this host (SlurmctldHost, NodeName).
for f in /etc/resolv.conf /etc/hosts; do cp -L "$f" "$root$f" 2>/dev/null || true; done

# enter CMD...: run CMD inside the root, in its own mount and pid namespaces (when this
# script is stopped, --kill-child ends the namespace and all that runs in it).
enter() {
	local b=$root/var/lib/slurm-dmtcp/build
	mkdir -p "$b" "$root$repo" "$repo/build" "$root/usr/local/go" "$root/var/lib/slurm-dmtcp/gomod"
	# shellcheck disable=SC2016 # expanded by the inner sh
	unshare --mount --pid --fork --kill-child --propagation private sh -ec '
		r=$1 repo=$2 goroot=$3 mod=$4; shift 4
		mount -t proc proc "$r/proc"
		mount --rbind /dev "$r/dev"
		mount --rbind /sys "$r/sys"
		mount -t tmpfs -o mode=0755 tmpfs "$r/run"
		mount --bind "$repo" "$r$repo"
		mount --bind "$r/var/lib/slurm-dmtcp/build" "$r$repo/build"
		mount --bind "$goroot" "$r/usr/local/go" && mount -o remount,bind,ro "$r/usr/local/go"
		if [ -d "$mod" ]; then
			mount --bind "$mod" "$r/var/lib/slurm-dmtcp/gomod" && mount -o remount,bind,ro "$r/var/lib/slurm-dmtcp/gomod"
		fi
		cd /
		exec chroot "$r" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 \
			PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			GOMODCACHE=/var/lib/slurm-dmtcp/gomod GOPROXY=off GOFLAGS=-buildvcs=false \
			GOTOOLCHAIN=local CI="${CI:-}" "$@"
	' sh "$root" "$repo" "$goroot" "$gomodcache" "$@"
}

# 2. Packages, with the root's own apt-get: what contrib/deps.sh lists for the build and the
# tests (Slurm, munge, libslurm-dev, gcc, valgrind, python3, MPI, packaging tools), and what
# building DMTCP by hand needs.
extra="build-essential git autoconf automake libtool file ca-certificates"
# shellcheck disable=SC2086
if ! enter dpkg-query -W $extra >/dev/null 2>&1 || ! enter "$repo/contrib/deps.sh" --check >/dev/null 2>&1; then
	say "installing Slurm, munge, the compiler and the test tools in $root (apt-get there)"
	# shellcheck disable=SC2016
	enter sh -c 'export DEBIAN_FRONTEND=noninteractive; { apt-get update -qq && apt-get install -y -qq --no-install-recommends $1 && "$2/contrib/deps.sh"; } </dev/null >/var/tmp/slurm-dmtcp-apt.log 2>&1' sh "$extra" "$repo" ||
		die "installing packages in $root failed; see $root/var/tmp/slurm-dmtcp-apt.log"
fi
have=$(enter dpkg-query -W -f '${Version}' libslurm-dev)
case "$have" in
"$release".*) say "Slurm $have in $root ($suite)" ;;
*) die "$root has Slurm $have, not $release (SDMTCP_ROOT names another suite's root?)" ;;
esac

# 3. The environment inside.
export_env="CLUSTER_DIR=${SDMTCP_RELEASE_CLUSTER_DIR:-/var/tmp/sdmtcp-s${release%%.*}}
CTLD_PORT=${SDMTCP_RELEASE_CTLD_PORT:-21817} SLURMD_PORT=${SDMTCP_RELEASE_SLURMD_PORT:-21818}
FIRST_JOB_ID=${SDMTCP_RELEASE_FIRST_JOB_ID:-500000} DMTCP_PREFIX=/opt/dmtcp
SDMTCP_MULTINODE=${SDMTCP_MULTINODE:-0} MULTI_CLUSTER_DIR=${MULTI_CLUSTER_DIR:-/var/tmp/sdmtcp-s${release%%.*}-multi}
MULTI_CTLD_PORT=${MULTI_CTLD_PORT:-21827} MULTI_SLURMD_PORT=${MULTI_SLURMD_PORT:-21828}
MULTI_NET_PREFIX=${MULTI_NET_PREFIX:-10.86.0} MULTI_FIRST_JOB_ID=${MULTI_FIRST_JOB_ID:-520000}
SDMTCP_SUITE=${SDMTCP_SUITE:-all} SDMTCP_FAULT_TRIALS=${SDMTCP_FAULT_TRIALS:-10}"
export_env=$(tr '\n' ' ' <<<"$export_env")
if [ "$mode" = shell ]; then
	say "a shell inside $root (exit to leave; what it started ends with it)"
	# shellcheck disable=SC2086
	enter env $export_env SLURM_CONF="${SDMTCP_RELEASE_CLUSTER_DIR:-/var/tmp/sdmtcp-s${release%%.*}}/slurm.conf" bash -l
	exit $?
fi
# 4. DMTCP, built inside the root by hand; then the suite.
if [ ! -x "$root/opt/dmtcp/bin/dmtcp_launch" ]; then
	cannot "Slurm $release tests: no DMTCP in $root/opt/dmtcp. Build it there once from its upstream source: git clone https://github.com/dmtcp/dmtcp $root/usr/src/dmtcp; contrib/tests/slurm-release.sh $release shell; then inside: cd /usr/src/dmtcp && ./configure --prefix=/opt/dmtcp && make -j2 && make install"
fi

say "building and testing in $root: make all unit-test c-test python-test, then the integration suite"
# shellcheck disable=SC2086,SC2016
enter env $export_env bash -c '
	cd "$1"
	rc=0
	# A failed unit suite does not keep the integration suite from running: both verdicts
	# are wanted from one (long) run; a failed build does.
	make all || exit $?
	make unit-test c-test python-test || rc=$?
	contrib/tests/integration.sh || rc=$?
	contrib/cluster/cluster-down.sh >/dev/null 2>&1 || true
	echo "slurm-release: Slurm $(dpkg-query -W -f "\${Version}" libslurm-dev): exit $rc"
	exit "$rc"
' sh "$repo"
