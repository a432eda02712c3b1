#!/usr/bin/env bash
# Creates (or reuses) the Python venv that the Ray driver runs in: target/ray-venv with
# ray==2.40.0. Idempotent: when the venv exists and `import ray` works, it prints one
# line and touches nothing. Prints the venv's python path last, for callers:
#   PY=$(scripts/ray/setup-venv.sh | tail -1)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=target/ray-venv
RAY_VERSION=2.40.0
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

if [ -x "$VENV/bin/python" ] &&
   "$VENV/bin/python" -c "import ray, sys; sys.exit(ray.__version__ != '$RAY_VERSION')" 2>/dev/null; then
  echo "ray-venv: reusing $VENV (ray $RAY_VERSION)" >&2
else
  if [ ! -x "$VENV/bin/python" ]; then
    echo "ray-venv: creating $VENV with $($PYTHON --version 2>&1)" >&2
    "$PYTHON" -m venv "$VENV"
  fi
  echo "ray-venv: pip install ray==$RAY_VERSION" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "ray==$RAY_VERSION" >&2
  "$VENV/bin/python" -c "import ray; print('ray-venv: ray', ray.__version__, 'ready')" >&2
fi
echo "$PWD/$VENV/bin/python"
