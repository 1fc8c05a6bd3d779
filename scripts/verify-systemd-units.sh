#!/usr/bin/env bash
# `systemd-analyze verify` of etc/openclaw.service and etc/openclaw.socket (together: the socket
# names the service). ExecStart= must exist for verify, so a copy points it at this checkout's
# twistd (TWISTD=path, default: the one next to python3 on PATH). Any output is a failure
# (warnings such as an unknown key included). Exit 0 and say so when systemd-analyze is absent.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "verify-systemd-units: systemd-analyze not installed; skipped"
  exit 0
fi
twistd=${TWISTD:-$(dirname "$(command -v python3)")/twistd}
[ -x "$twistd" ] || twistd=$(command -v true)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cp "$root/etc/openclaw.service" "$root/etc/openclaw.socket" "$dir/"
sed -i "s#^ExecStart=[^ ]*twistd#ExecStart=$twistd#" "$dir/openclaw.service"
out=$(systemd-analyze verify "$dir/openclaw.socket" "$dir/openclaw.service" 2>&1) && rc=0 || rc=$?
if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
  echo "verify-systemd-units: FAILED (exit $rc)"; echo "$out"
  exit 1
fi
echo "verify-systemd-units: etc/openclaw.service and etc/openclaw.socket verified"
