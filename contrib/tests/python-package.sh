#!/usr/bin/env bash
# The Python client installs as a package: pip install ./contrib/python into a fresh venv
# of Debian's python3 (offline: no build isolation, no index; the venv sees Debian's
# setuptools and wheel), then, from outside the checkout, the module imports from the
# venv with its py.typed marker and the release of proto/version.go.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
py=${PYTHON_PACKAGE:-/usr/bin/python3}
command -v "$py" >/dev/null || { echo "SKIP python package test: $py not found"; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" -m venv --system-site-packages "$tmp/venv"
# The venv's own setuptools builds it (no download); quiet unless it fails. It builds in
# the folder it is given: a copy, so that the checkout gets no build/ or egg-info.
cp -R "$repo/contrib/python" "$tmp/src"
if ! "$tmp/venv/bin/pip" install -q --no-build-isolation --no-index "$tmp/src" >"$tmp/pip.log" 2>&1; then
	cat "$tmp/pip.log"
	echo "FAIL python package: pip install ./contrib/python"
	exit 1
fi
want=$(sed -n 's/^const Version = "\(.*\)"$/\1/p' "$repo/proto/version.go")
cd "$tmp"
"$tmp/venv/bin/python" - "$want" <<'PY'
import importlib.metadata, pathlib, sys
import slurm_dmtcp
where = pathlib.Path(slurm_dmtcp.__file__).parent
assert "site-packages" in str(where), f"imported from {where}, not the venv"
assert (where / "py.typed").is_file(), "py.typed is not installed"
got = importlib.metadata.version("slurm-dmtcp")
assert got == sys.argv[1], f"package version {got}, proto/version.go says {sys.argv[1]}"
assert callable(slurm_dmtcp.checkpoint) and not slurm_dmtcp.in_dmtcp_job()
print(f"python package: slurm-dmtcp {got} installs with pip, typed, imports from {where}")
PY
