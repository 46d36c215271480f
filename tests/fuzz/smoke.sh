#!/usr/bin/env bash
# Runs every fuzz target of tests/fuzz for a bounded time (a smoke run: the README test
# command calls it), each on a fresh copy of its seed corpus (tests/fuzz/seeds/TARGET),
# and fails on the first crash, leaving the input that crashed in tests/fuzz/artifacts/.
#
# Usage: tests/fuzz/smoke.sh [SECONDS_PER_TARGET] [TARGET...]   (default 20, every target)
#
# Installs cargo-fuzz (--locked) when missing. The targets are built with libFuzzer's
# coverage instrumentation on the stable toolchain (`--sanitizer none`), in
# tests/fuzz/target; see docs/testing.md#fuzzing.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-20}
shift || true
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "smoke.sh: SECONDS_PER_TARGET must be a number, got '$seconds'" >&2; exit 2; }
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(bundle csr cacerts_secret duration crd_spec)
fi

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
cargo fuzz build --sanitizer none -O

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in "${targets[@]}"; do
  [ -d "seeds/$t" ] || { echo "smoke.sh: no seed corpus seeds/$t" >&2; exit 2; }
  mkdir -p "$work/$t"
  # libFuzzer's summary (executions, coverage) goes to stderr; keep its last lines.
  if ! cargo fuzz run --sanitizer none -O "$t" "$work/$t" "seeds/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      >"$work/$t.log" 2>&1; then
    cat "$work/$t.log" >&2
    echo "smoke.sh: fuzz target $t crashed; the input is in tests/fuzz/artifacts/$t/" >&2
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$work/$t.log" | tail -n 1 | grep -o '[0-9]*' || echo '?')
  echo "fuzz $t: ${runs} executions in ${seconds} s, coverage ${cov} edges, no crash"
done
