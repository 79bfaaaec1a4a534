#!/usr/bin/env bash
# Install edge as a systemd service (run as root on the terminal):
#   sudo scripts/install_service.sh [--prefix /opt/edge] [--data /var/lib/edge] [--config /etc/edge/edge.yaml] [--dry-run]
# Copies this checkout to PREFIX, creates the virtualenv and fetches the models there,
# creates the `edge` system user (groups video, gpio where they exist), writes a config
# (only if none exists) whose data_dir is DATA and runtime_dir /run/edge (tmpfs), installs config/edge.service with the
# paths filled in, checks it with systemd-analyze, enables and starts it.
# Idempotent: re-running updates the code and the unit, never the config or the data.
set -euo pipefail
PREFIX=/opt/edge DATA=/var/lib/edge CONFIG=/etc/edge/edge.yaml UNIT_DIR=/etc/systemd/system DRY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --config) CONFIG=$2; shift 2 ;;
    --unit-dir) UNIT_DIR=$2; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    *) echo "install_service.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
SRC=$(cd "$(dirname "$0")/.." && pwd)
run() { if [ "$DRY" = 1 ]; then echo "+ $*"; else "$@"; fi; }

unit=$(mktemp)
trap 'rm -f "$unit"' EXIT
sed -e "s#@PREFIX@#$PREFIX#g" -e "s#@CONFIG@#$CONFIG#g" -e "s#@DATA@#$DATA#g" "$SRC/config/edge.service" > "$unit"

if [ "$DRY" = 0 ] && [ "$(id -u)" != 0 ]; then
  echo "install_service.sh: run as root (or with --dry-run to see the steps)" >&2; exit 2
fi
if ! id edge >/dev/null 2>&1; then
  run useradd --system --home-dir "$DATA" --shell /usr/sbin/nologin edge
fi
for g in video gpio; do
  if getent group "$g" >/dev/null; then run usermod -a -G "$g" edge; fi
done
run mkdir -p "$PREFIX" "$DATA" "$(dirname "$CONFIG")"
run rsync -a --delete --exclude .venv --exclude var --exclude .git "$SRC/" "$PREFIX/"
run make -C "$PREFIX" setup
if [ ! -e "$CONFIG" ]; then
  if [ "$DRY" = 1 ]; then echo "+ write $CONFIG (data_dir: $DATA, runtime_dir: /run/edge)"; else
    sed -e "s#^data_dir: .*#data_dir: $DATA#" -e "s#^runtime_dir: .*#runtime_dir: /run/edge#" \
      -e "s#^  dir: models #  dir: $PREFIX/models #" \
      "$SRC/config/edge.yaml" > "$CONFIG"
    chmod 640 "$CONFIG"; chgrp edge "$CONFIG"
  fi
fi
run chown -R edge:edge "$DATA"
run install -m 644 "$unit" "$UNIT_DIR/edge.service"
run systemd-analyze verify "$UNIT_DIR/edge.service"
run systemctl daemon-reload
run systemctl enable --now edge.service
echo "edge installed: systemctl status edge; journalctl -u edge -f; edge --config $CONFIG status"
