#!/usr/bin/env bash
# The regression demo of the CI gate (examples/ci/README.md).
#
#   examples/ci/regression_demo.sh                    # audit the "pull request" and compare (exits 1: regression)
#   examples/ci/regression_demo.sh --update-baseline  # re-audit broome_lottery.py into baseline.json first
#
# Run from anywhere; writes current.json, current.html and compare.html into $OUT (default: a temp dir).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
if [ "${1:-}" = "--update-baseline" ]; then
  fairaudit check examples/allocators/broome_lottery.py --config examples/ci/fairaudit.toml \
    --json examples/ci/baseline.json --html "$OUT/baseline.html" || { echo "the baseline audit did not pass" >&2; exit 2; }
  fairaudit check examples/ci/flattened_lottery.py --config examples/ci/fairaudit.toml \
    --json examples/ci/flattened_current.json --html "$OUT/current.html"
  cp examples/ci/flattened_current.json "$OUT/current.json"
else
  fairaudit check examples/ci/flattened_lottery.py --config examples/ci/fairaudit.toml \
    --json "$OUT/current.json" --html "$OUT/current.html"
fi
echo "--- fairaudit compare examples/ci/baseline.json $OUT/current.json"
fairaudit compare examples/ci/baseline.json "$OUT/current.json" --html "$OUT/compare.html"
rc=$?
echo "compare exited $rc (0 no regression, 1 regression, 2 cannot compare); diff report: $OUT/compare.html"
exit $rc
