#!/usr/bin/env bash
# Install a Matrix homeserver (Synapse, the PyPI package matrix-synapse) into its own venv for
# the Matrix provider's integration tests.  Idempotent: a complete install is left alone.
# Prints the venv's python on its last line (tests read OPENCLAW_SYNAPSE_PYTHON, or this
# default location).
set -euo pipefail
SYNAPSE_VERSION=${SYNAPSE_VERSION:-1.163.2}
PYTHON=${PYTHON:-python3}
DIR=${OPENCLAW_SYNAPSE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/openclaw_tw/synapse}
stamp="$DIR/.installed-$SYNAPSE_VERSION"
if [ ! -f "$stamp" ]; then
  rm -rf "$DIR/venv"
  mkdir -p "$DIR"
  "$PYTHON" -m venv "$DIR/venv"
  "$DIR/venv/bin/pip" install -q --disable-pip-version-check "matrix-synapse==$SYNAPSE_VERSION"
  "$DIR/venv/bin/python" -c 'import synapse.app.homeserver' >/dev/null
  touch "$stamp"
fi
echo "$DIR/venv/bin/python"
