#!/usr/bin/env bash
# The README's first command: set up .venv (system packages, dependencies, models), then
# optionally run the main job. Works on a fresh Raspberry Pi OS Lite (64-bit) and on x86.
#
#   scripts/setup.sh            set up only (what `make setup` runs)
#   scripts/setup.sh run [...]  set up, then `edge run [...]` (e.g. --duration 20)
#
# Environment: PYTHON (python3), VENV (.venv), EDGE_EXTRAS (pip extras, e.g. test,postgres),
# EDGE_SYSTEM_SITE (1/0: force the venv's --system-site-packages on or off; default: on
# when the system Python can import picamera2).
# Exit 2: system packages are missing and this is not root (the `sudo apt-get` line is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=${EDGE_EXTRAS:-}
PI_CONSTRAINTS=scripts/pi-constraints.txt

say() { printf 'setup: %s\n' "$*" >&2; }

command -v "$PYTHON" >/dev/null || { say "$PYTHON not found: install Python >= 3.9 (apt-get install python3)"; exit 2; }
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' || { say "$PYTHON is older than 3.9"; exit 2; }

# What the system must provide, as Debian / Raspberry Pi OS package names.
py_can() { "$PYTHON" -c "$1" >/dev/null 2>&1; }
need=()
py_can 'import venv, ensurepip' || need+=(python3-venv)
if ! [ -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import hnswlib' >/dev/null 2>&1; then
  # hnswlib ships no wheels: pip compiles it (a C++ compiler and Python's headers).
  command -v g++ >/dev/null || need+=(g++)
  py_can 'import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' \
    || need+=(python3-dev)
fi
if grep -qs 'Raspberry Pi' /proc/device-tree/model && ! py_can 'import picamera2'; then
  need+=(python3-picamera2)      # Raspberry Pi OS's apt, not PyPI (it needs libcamera's bindings)
fi
if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    say "missing: ${need[*]} (Debian names): install them with your system's package manager"; exit 2
  fi
  if [ "$(id -u)" -ne 0 ]; then
    say "missing system packages; run this, then this command again:"
    echo "sudo apt-get install -y ${need[*]}"
    exit 2
  fi
  say "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# picamera2 lives in the system's site-packages; the venv must see it, and keep numpy
# below 2 there (apt's simplejpeg/picamera2 are built against Debian's numpy 1.24).
if [ -n "${EDGE_SYSTEM_SITE:-}" ]; then system_site=$EDGE_SYSTEM_SITE
elif py_can 'import picamera2'; then system_site=1
else system_site=0; fi
if [ -f "$VENV/pyvenv.cfg" ]; then
  have=$(sed -n 's/^include-system-site-packages *= *//p' "$VENV/pyvenv.cfg")
  want=$([ "$system_site" = 1 ] && echo true || echo false)
  if [ "$have" != "$want" ]; then say "recreating $VENV (system site packages: $want)"; rm -rf "$VENV"; fi
fi
if ! [ -x "$VENV/bin/python" ]; then
  flags=(); [ "$system_site" = 1 ] && flags+=(--system-site-packages)
  say "creating $VENV ${flags[*]:-}"
  "$PYTHON" -m venv "${flags[@]}" "$VENV"
fi
pip_args=(--quiet --disable-pip-version-check)
if [ "$system_site" = 1 ]; then
  export PIP_CONSTRAINT="${PIP_CONSTRAINT:+$PIP_CONSTRAINT }$PWD/$PI_CONSTRAINTS"   # also reaches build envs
fi

# Install once per change of the package's metadata, extras or constraints.
stamp="$VENV/.edge-installed"
want_stamp=$( (cat setup.cfg pyproject.toml "$PI_CONSTRAINTS"; for c in ${PIP_CONSTRAINT:-}; do cat "$c"; done) |
             sha256sum | cut -c1-16)-$EXTRAS-$system_site
if [ "$(cat "$stamp" 2>/dev/null)" != "$want_stamp" ]; then
  say "installing the package and its dependencies (hnswlib is compiled: minutes on a Pi)"
  "$VENV/bin/pip" install "${pip_args[@]}" --upgrade pip
  "$VENV/bin/pip" install "${pip_args[@]}" -e ".${EXTRAS:+[$EXTRAS]}"
  echo "$want_stamp" >"$stamp"
fi
"$VENV/bin/edge" models fetch

if [ "${1:-}" = run ]; then
  shift
  exec "$VENV/bin/edge" run "$@"
fi
