#!/usr/bin/env bash
# The Debian packages that building, testing and the demo need, installed when missing
# (apt-get, as root). DMTCP is not among them: Debian has no package for it (see README).
#
#   contrib/deps.sh          install what is missing; say what was already there
#   contrib/deps.sh --check  only list what is missing (exit 1 when something is)
#   contrib/deps.sh --apps   the programs of make apps too (add --check to only list them)
#
# Not root and something missing: it names the packages and exits 1.
set -euo pipefail
say() { printf 'deps: %s\n' "$*"; }

# command-or-file:package. A path is checked as a file, a name as a command (PATH or /usr/sbin).
need=(
	# Go is not taken from Debian (too old for go.mod): see README.
	# make deb: dpkg-buildpackage (dpkg-dev) and dh (debhelper).
	dpkg-buildpackage:dpkg-dev dh:debhelper
	# make rpm and its test, on Debian: rpmbuild, rpm2cpio.
	rpmbuild:rpm cpio:cpio
	gcc:gcc make:make /usr/include/slurm/spank.h:libslurm-dev
	slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge
	valgrind:valgrind python3:python3 ip:iproute2 nsenter:util-linux unshare:util-linux
	ps:procps pgrep:procps runuser:util-linux useradd:passwd
	# MPI programs under --dmtcp (contrib/integration/mpi_test.go): ~30 s, 107 MB measured.
	lmp:lammps mpirun.openmpi:openmpi-bin mpicc.openmpi:libopenmpi-dev
	mpiexec.mpich:mpich mpicc.mpich:libmpich-dev
	# nodeprobe map --svg is opened in a headless browser (contrib/integration/visible_test.go).
	chromium:chromium
)
check=0 apps=0
for arg in "$@"; do
	case "$arg" in
	--check) check=1 ;;
	--apps) apps=1 ;;
	*) say "error: unknown argument $arg (expected --check, --apps)" >&2; exit 2 ;;
	esac
done
# make apps (contrib/integration/apps_test.go): the real programs it runs under --dmtcp.
if [ "$apps" = 1 ]; then
	need+=(
		lmp:lammps gcc:gcc make:make java:default-jdk-headless javac:default-jdk-headless
		Rscript:r-base-core sqlite3:sqlite3 xz:xz-utils sha256sum:coreutils
	)
fi
missing=()
# pip install of the Python client is tested with Debian's python3 in a venv that sees
# Debian's setuptools and wheel (offline, no build isolation).
if ! /usr/bin/python3 -c 'import ensurepip, setuptools, wheel' >/dev/null 2>&1; then
	missing+=(python3 python3-venv python3-setuptools python3-wheel)
fi
# The numpy/scipy program of make apps runs with Debian's python3.
if [ "$apps" = 1 ] && ! /usr/bin/python3 -c 'import numpy, scipy' >/dev/null 2>&1; then
	missing+=(python3-numpy python3-scipy)
fi
for pair in "${need[@]}"; do
	what=${pair%%:*} pkg=${pair#*:}
	case "$what" in
	/*) [ -e "$what" ] && continue ;;
	*) { command -v "$what" || [ -x "/usr/sbin/$what" ] || [ -x "/sbin/$what" ]; } >/dev/null 2>&1 && continue ;;
	esac
	case " ${missing[*]} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
done
gomsg=""
if ! command -v "${GO:-go}" >/dev/null 2>&1; then
	gomsg="no Go toolchain on PATH (go.mod needs $(sed -n 's/^go //p' "$(dirname "$0")/../go.mod"); install it from https://go.dev/dl, e.g. into /usr/local/go, and add /usr/local/go/bin to PATH)"
fi
if [ "$check" = 1 ]; then
	[ -z "$gomsg" ] || say "missing: $gomsg"
	[ ${#missing[@]} -eq 0 ] && [ -z "$gomsg" ] && { say "nothing missing"; exit 0; }
	[ ${#missing[@]} -eq 0 ] && exit 1
	say "missing: ${missing[*]}"
	exit 1
fi
[ -z "$gomsg" ] || { say "error: $gomsg" >&2; exit 1; }
if [ ${#missing[@]} -eq 0 ]; then
	say "build and test packages already installed"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	say "error: missing Debian packages: ${missing[*]}; install them as root (apt-get install ${missing[*]}) or run this as root" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	say "error: missing ${missing[*]} and no apt-get here: install the equivalent packages of this distribution" >&2
	exit 1
fi
say "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
say "installed: ${missing[*]}"
