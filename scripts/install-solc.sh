#!/usr/bin/env bash
# Installs solc-js (the Solidity compiler as WebAssembly, from npm) under scripts/solc,
# where `zkinfer verify-evm` finds it when no native `solc` is on PATH.
set -euo pipefail
cd "$(dirname "$0")/solc"
if [ ! -f node_modules/solc/soljson.js ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
