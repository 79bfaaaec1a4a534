#!/usr/bin/env bash
# The README's first command on Debian bookworm arm64 (Raspberry Pi OS Lite 64-bit's base),
# here under qemu-user emulation, then a smoke subset: models against their reference
# outputs (fp32 and int8), detect + embed on real photos against this machine's x86
# results, library add/search, the HTTP service. Prints each step's result and time;
# exit 1 on any failure. Run as root; not part of .ci/run (README: how long it takes).
#
#   sudo scripts/arm64_check.sh [--fresh]     # --fresh: build the arm64 root again
#
# EDGE_ARM64_ROOT (var/arm64-root, git-ignored; reused once complete, with its pip cache),
# EDGE_HOST_PYTHON (the x86 venv's python, .venv/bin/python: `make setup` first),
# EDGE_ARM64_MIRROR (http://deb.debian.org/debian), EDGE_ARM64_CPU (cortex-a72, a Pi 4's: qemu's
# default "max" has dot product, i8mm, SVE... that a Pi lacks, and onnxruntime picks its
# kernels by them; the model and crosscheck steps run again as cortex-a76, a Pi 5's).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
ROOT=${EDGE_ARM64_ROOT:-$REPO/var/arm64-root}
HOST_PY=${EDGE_HOST_PYTHON:-$REPO/.venv/bin/python}
MIRROR=${EDGE_ARM64_MIRROR:-http://deb.debian.org/debian}
DATA=$REPO/../shared/data
CPU=${EDGE_ARM64_CPU:-cortex-a72}
CPU2=cortex-a76
RUN_S=30                                   # how long the first command's `edge run` runs
PHOTOS=(multiface/insightface_t1.jpg multiface/fr_two_people.jpg multiface/fr_obama_and_biden.jpg
        multiface/deepface_couple.jpg multiface/skimage_astronaut.png multiface/inspireface_view_noface.jpg
        lfw-view1/images/Paul_Wolfowitz/Paul_Wolfowitz_0002.jpg lfw-view1/images/Paul_Wolfowitz/Paul_Wolfowitz_0003.jpg
        lfw-view1/images/Jennifer_Lopez/Jennifer_Lopez_0003.jpg lfw-view1/images/Ricardo_Lagos/Ricardo_Lagos_0001.jpg
        lfw-view1/images/AJ_Cook/AJ_Cook_0001.jpg)
fresh=0
case "${1:-}" in --fresh) fresh=1 ;; "") ;; *) echo "usage: $0 [--fresh]" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "arm64_check: run as root (debootstrap, binfmt_misc, chroot)" >&2; exit 2; }
[ -x "$HOST_PY" ] || { echo "arm64_check: $HOST_PY missing: run \`make setup\` (or set EDGE_HOST_PYTHON)" >&2; exit 2; }

summary=() failed=0 start=$(date +%s)
step() {   # step NAME COMMAND...: run it with errexit, record passed/FAILED and its time
  local name=$1 t0 rc; shift; t0=$(date +%s)
  echo "== $name"
  set +e; ( set -e; "$@" ); rc=$?; set -e
  local dt=$(( $(date +%s) - t0 )) word=passed
  [ $rc -eq 0 ] || { word=FAILED; failed=1; }
  summary+=("$(printf '%-7s %6ds  %s' "$word" "$dt" "$name")")
  echo "== $name: $word in ${dt}s"
  return $rc
}
report() {
  echo; echo "arm64 check: $( [ $failed -eq 0 ] && echo passed || echo FAILED ) in $(( $(date +%s) - start ))s (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  printf '  %s\n' "${summary[@]}"
}
in_root() { chroot "$ROOT" /usr/bin/env -i QEMU_CPU="${QEMU_CPU_NOW:-$CPU}" HOME=/root LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
mounted=()
unmount() { local m; for m in "${mounted[@]}"; do umount -l "$m" 2>/dev/null || true; done; mounted=(); }
trap 'unmount; report' EXIT

host_tools() {
  local need=()
  command -v debootstrap >/dev/null || need+=(debootstrap)
  [ -x /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static)
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  local entry=/proc/sys/fs/binfmt_misc/qemu-aarch64
  if [ -e $entry ] && ! grep -q '^flags:.*F' $entry; then echo -1 >$entry; fi   # F: chroots need no copy of qemu
  [ -e $entry ] || cat /usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register
  grep -q '^enabled' $entry
}

build_root() {
  if [ $fresh -eq 1 ] || ! [ -e "$ROOT/.edge-root-complete" ]; then
    # a mount left inside (an interrupted run's /dev bind) must never be deleted through
    local m; for m in $(awk -v r="$ROOT" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m"; done
    rm -rf --one-file-system "$ROOT" "$ROOT.new"
    # minbase + python3: less than Pi OS Lite has (no venv, compiler, headers, make), so the
    # first command must name and install every system package it needs.
    debootstrap --arch=arm64 --variant=minbase --include=python3,ca-certificates bookworm "$ROOT.new" "$MIRROR" \
      >/tmp/arm64-debootstrap.$$.log 2>&1 || { tail -20 /tmp/arm64-debootstrap.$$.log; return 1; }
    chroot "$ROOT.new" useradd -m pi
    mv "$ROOT.new" "$ROOT"
    touch "$ROOT/.edge-root-complete"
  else
    echo "reusing $ROOT (--fresh rebuilds it)"
  fi
  [ "$(in_root uname -m)" = aarch64 ]
}

mount_root() {   # no /sys: the host's (x86) CPU topology there makes onnxruntime's cpuinfo segfault under qemu
  local m
  for m in proc dev dev/pts; do
    mountpoint -q "$ROOT/$m" && continue
    case $m in proc) mount -t proc proc "$ROOT/proc" ;;
                dev) mount --bind /dev "$ROOT/dev" ;; dev/pts) mount -t devpts devpts "$ROOT/dev/pts" ;; esac
    mounted=("$ROOT/$m" "${mounted[@]}")
  done
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  # Behind a TLS-inspecting proxy the host trusts local CAs: the root trusts the same ones,
  # and pip (whose own bundle lacks them) is told to use the system's.
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    mkdir -p "$ROOT/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
    cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$ROOT/etc/pip.conf"
  fi
}

copy_checkout() {   # the tracked files (as they are now) and the photos; keeps .venv and the wheel cache
  local dst=$ROOT/opt/edge
  mkdir -p "$dst/models"
  find "$dst" -mindepth 1 -maxdepth 1 ! -name '.venv*' ! -name models -exec rm -rf {} +
  find "$dst/models" -mindepth 1 -maxdepth 1 ! -name cache -exec rm -rf {} +
  git ls-files -z | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$dst"
  rm -rf "$ROOT/opt/shared"
  rm -f "$ROOT/opt/edge/x86-faces.json"
  local p; for p in "${PHOTOS[@]}"; do install -D -m 644 "$DATA/$p" "$ROOT/opt/shared/data/$p"; done
}

not_root_is_told() {   # a normal user gets the one sudo line and exit 2 (only while packages are missing)
  if in_root python3 -c 'import ensurepip' 2>/dev/null; then echo "skipped: the root has its packages already"; return 0; fi
  local out rc=0
  out=$(chroot --userspec=pi:pi "$ROOT" /usr/bin/env -i HOME=/home/pi PATH=/usr/bin:/bin bash -c 'cd /opt/edge && scripts/setup.sh' 2>&1) || rc=$?
  echo "$out"
  [ $rc -eq 2 ] && grep -q '^sudo apt-get install -y ' <<<"$out"
}

first_command() {   # the README's first command, as root: installs, fetches, runs the demo loop
  local log=$ROOT/opt/edge/first-command.log
  in_root bash -c "cd /opt/edge && scripts/setup.sh run --duration $RUN_S" 2>&1 | tee "$log"   # pipefail: its exit code
  grep -q 'no camera configured: demo camera' "$log"
}

crosscheck() {   # x86 (host venv) and arm64 (as CPU $1) detect + embed the same photos
  local cpu=${1:-$CPU} photos=() host=() p
  for p in "${PHOTOS[@]}"; do photos+=("/opt/shared/data/$p"); host+=("$DATA/$p"); done
  [ -e "$ROOT/opt/edge/x86-faces.json" ] ||
    PYTHONPATH=$REPO "$HOST_PY" -m edge.crosscheck dump "$ROOT/opt/edge/x86-faces.json" "${host[@]}"
  # fp32, then int8: the installed build, or (where fetch refused it) one built anyway in /tmp
  QEMU_CPU_NOW=$cpu in_root bash -c 'cd /opt/edge && rm -f arm64-faces.json && py=.venv/bin/python &&
    $py -m edge.crosscheck dump arm64-faces.json "$@" --precision fp32 &&
    if compgen -G "models/*.int8.onnx" >/dev/null; then $py -m edge.crosscheck dump arm64-faces.json "$@" --precision int8
    else rm -rf /tmp/int8-built && $py -m edge.crosscheck int8-anyway /tmp/int8-built &&
         $py -m edge.crosscheck dump arm64-faces.json "$@" --precision int8 --models-dir /tmp/int8-built; fi' _ "${photos[@]}" 2>&1 |
    { grep -v -e '^Error in cpuinfo' -e 'cpuinfo.* warning' || true; }   # no /sys here: onnxruntime's cpuinfo complains
  local rc=0
  PYTHONPATH=$REPO "$HOST_PY" -m edge.crosscheck compare "$ROOT/opt/edge/x86-faces.json" "$ROOT/opt/edge/arm64-faces.json" --precision fp32 || rc=1
  PYTHONPATH=$REPO "$HOST_PY" -m edge.crosscheck compare "$ROOT/opt/edge/x86-faces.json" "$ROOT/opt/edge/arm64-faces.json" --precision int8 ||
    echo "(int8: a report, not a failure: models.precision int8 is off by default, and refused where its check fails)"
  return $rc
}

other_cpu() {   # the model checks and the crosscheck again as a Pi 5's CPU
  # (not piped into grep -q: its early exit makes qemu's write a SIGPIPE, a failure under pipefail)
  grep -qw "$CPU2" <<<"$(qemu-aarch64-static -cpu help)" || { echo "skipped: this qemu has no $CPU2"; return 0; }
  QEMU_CPU_NOW=$CPU2 in_root bash -c 'cd /opt/edge && .venv/bin/python -m pytest -q -p no:cacheprovider -k reference tests/test_arm64_smoke.py' &&
    crosscheck $CPU2
}

system_site_case() {   # a Pi with apt's picamera2: the venv sees the system's numpy 1.24 and keeps it below 2
  # Debian has no simplejpeg; python3-bottleneck is a C extension built against Debian's numpy the same way.
  in_root bash -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-numpy python3-bottleneck >/dev/null &&
    cd /opt/edge && EDGE_SYSTEM_SITE=1 VENV=.venv-syssite scripts/setup.sh &&
    .venv-syssite/bin/python -c "import numpy, bottleneck, cv2, onnxruntime, hnswlib, edge.analysis.app
print(\"numpy\", numpy.__version__, numpy.__file__); assert numpy.__version__ < \"2\""'
}

smoke_tests() {
  in_root bash -c 'cd /opt/edge && .venv/bin/pip install -q --disable-pip-version-check pytest &&
                   .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_arm64_smoke.py'
}

step "host: debootstrap, qemu-user-static, binfmt_misc" host_tools
step "arm64 root (debootstrap bookworm)" build_root
mount_root
step "copy the checkout and ${#PHOTOS[@]} photos in" copy_checkout
step "as a normal user: the sudo apt-get line, exit 2" not_root_is_told || true
step "first command: scripts/setup.sh run --duration $RUN_S" first_command || true
step "x86 vs arm64 ($CPU): detect + embed, fp32 and int8" crosscheck || true
step "smoke tests (tests/test_arm64_smoke.py)" smoke_tests || true
step "as $CPU2 (a Pi 5): reference checks, x86 vs arm64" other_cpu || true
step "picamera2's case: --system-site-packages, numpy < 2" system_site_case || true
[ $failed -eq 0 ]
