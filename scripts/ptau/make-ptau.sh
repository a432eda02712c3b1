#!/usr/bin/env bash
# Makes a small Powers-of-Tau file with snarkjs (from npm, installed here on first use),
# as a ceremony would: `powersoftau new bn128 POWER`, one contribution, `prepare phase2`.
# Usage: scripts/ptau/make-ptau.sh OUT.ptau [POWER]   (POWER 10 by default; cached: an
# existing OUT is kept). The tests use it for `zkinfer setup --srs FILE.ptau`.
set -euo pipefail
out=$1
power=${2:-10}
here=$(cd "$(dirname "$0")" && pwd)
[ -s "$out" ] && exit 0
if [ ! -x "$here/node_modules/.bin/snarkjs" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
snarkjs="$here/node_modules/.bin/snarkjs"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$snarkjs" powersoftau new bn128 "$power" "$tmp/0.ptau" >/dev/null
"$snarkjs" powersoftau contribute "$tmp/0.ptau" "$tmp/1.ptau" --name=zkinfer-tests \
  -e="zkinfer test contribution $(date +%s%N)" >/dev/null
"$snarkjs" powersoftau prepare phase2 "$tmp/1.ptau" "$tmp/final.ptau" >/dev/null
mkdir -p "$(dirname "$out")"
mv "$tmp/final.ptau" "$out"
