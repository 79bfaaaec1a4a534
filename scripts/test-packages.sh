#!/usr/bin/env bash
# The Debian packages the tests run for real: a browser and its driver (the console's
# tests, selenium) and an MQTT broker (the MQTT sink's). Installed with apt-get when
# missing and we are root (CI is); otherwise the tests that need them say what to install.
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v openssl >/dev/null || need+=(openssl)   # the MQTT TLS test's self-signed certificates
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "test packages missing: ${need[*]} (sudo apt-get install -y ${need[*]})" >&2
    exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
