#!/usr/bin/env bash
# A tree of aggregations proven on a Ray cluster (issue 18): mlp_tiny in SEGMENTS segments
# (default 2) compiled for folding, a tree of `--leaf 1` folded by
# scripts/ray/prove_ray.py --aggregate on a local 3-node cluster (scripts/ray/
# cluster_test.py: head and two workers, processes on this machine), each node's keys
# made on its worker; then the aggregated proof verified natively and in revm. With
# --compare, `zkinfer aggregate --leaf 1` (one process, the nodes one after another) runs
# after it on the same model for the side-by-side figure. The leaves run side by side:
# about 8 GB each at k 21, so two need ~17 GB; on two cores they share the cores, so the
# figure shows the cluster path works and what it costs, not a speed-up (that needs one
# machine per node). Uses $ZKINFER (default target/release/zkinfer).
#   scripts/bench-ray-aggregate.sh [--compare] [SEGMENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
compare=0
[ "${1:-}" = "--compare" ] && { compare=1; shift; }
segments=${1:-2}
Z=${ZKINFER:-$PWD/target/release/zkinfer}
[ -x "$Z" ] || cargo build -q --release --locked --bin zkinfer
command -v /usr/bin/time >/dev/null || { echo "error: /usr/bin/time is needed (apt-get install time)" >&2; exit 2; }
scripts/install-solc.sh >/dev/null
PY=$(scripts/ray/setup-venv.sh | tail -1)
M=../shared/models
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "== mlp_tiny, $segments segments, a tree of --leaf 1 on Ray ($(git rev-parse --short HEAD), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1e6}' /proc/meminfo))"
"$Z" compile "$M/mlp_tiny.onnx" --calibration "$M/mlp_tiny.input.json" --out "$work/m" \
  --bits 8 --segments "$segments" --aggregate > "$work/compile.log"
"$Z" setup "$work/m" --dev-srs > "$work/setup.log" 2>&1
/usr/bin/time -f "%e s wall, peak %M KB (the driver and cluster processes, not the workers' zkinfer)" \
  -o "$work/time" "$PY" scripts/ray/cluster_test.py "$work/m" --input "$M/mlp_tiny.input.json" \
  --proof "$work/ray.json" --zkinfer "$Z" --aggregate --leaf 1 --dev-srs 2>&1 |
  grep -vE "^\(|INFO|WARNING|warning: --dev-srs|^\s*$" || true
[ -s "$work/ray.json" ] || { echo "error: the cluster wrote no aggregated proof" >&2; exit 1; }
echo "  ray: $(cat "$work/time")"
"$Z" verify "$work/m" --proof "$work/ray.json" | grep -E "^(valid|invalid)|verify"
"$Z" verify-evm "$work/m" --proof "$work/ray.json" 2>&1 | grep -E "accepted|rejected|gas|code"
if [ "$compare" = 1 ]; then
  rm -rf "$work/m/aggregate"
  /usr/bin/time -f "%e s wall, peak %M KB" -o "$work/time" "$Z" aggregate "$work/m" \
    --input "$M/mlp_tiny.input.json" --proof "$work/seq.json" --leaf 1 --dev-srs > "$work/seq.log" 2>&1 \
    || { tail -20 "$work/seq.log" >&2; exit 1; }
  grep -E "folded|time  |peak memory" "$work/seq.log"
  echo "  aggregate (one process): $(cat "$work/time")"
  "$Z" verify "$work/m" --proof "$work/seq.json" | grep -E "^(valid|invalid)"
fi
