#!/usr/bin/env bash
# Scale of the agent model (issue 12, "Scale"; docs/BENCHMARKS.md): 10, 100 and 1,000
# simulated clusters enroll with one `meshtrust serve`, then the service rotates the root
# across all of them with a zero hold. Prints a markdown table (growth as ratios to the
# 10-cluster run of the same script) and writes the plot docs/fleet-scale.svg.
#
# Usage:
#   tests/bench/fleet_scale.sh [--sizes "10 100 1000"] [--report-every-ms 1000] [--no-build]
#
# What runs:
#   - `cargo build --release --locked -p meshtrust-cli -p meshtrust-testkit --bin meshtrust
#     --bench fleet_scale` (one invocation: one feature set);
#   - for each size, tests/benches/fleet_scale.rs: it starts `meshtrust serve` (SQLite store,
#     self-issued TLS) in a work directory under $TMPDIR, enrolls the clusters (one-time
#     tokens made first, untimed; each cluster makes its key and CSR, timed), has every
#     cluster report once, restarts the service with `rotation.to` (a second root, hold 0s)
#     and runs every cluster as its agent would — report every --report-every-ms (a minute in
#     production), renew when told to reissue, take the trust file given — until the service
#     says `complete`; then checks every cluster holds the new root alone. The service's
#     peak RSS (VmHWM) and CPU time during the rotation are read from /proc.
# Targets: enrollment of 1,000 < 30 s; rotation of 1,000 < 60 s; RSS < 200 MB.
set -euo pipefail

die() {
    printf 'fleet_scale: error: %s\n' "$*" >&2
    exit 1
}

sizes="10 100 1000"
every=1000
build=1
while (($#)); do
    case "$1" in
    --sizes) [[ $# -ge 2 ]] || die "--sizes needs a value"; sizes=$2; shift 2 ;;
    --report-every-ms) [[ $# -ge 2 ]] || die "--report-every-ms needs a value"; every=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    -h | --help) sed -n '2,/^set -euo pipefail/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done
command -v jq >/dev/null || die "jq is needed"
command -v python3 >/dev/null || die "python3 is needed (for the plot)"

REPO_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
bin="$REPO_ROOT/target/release/meshtrust"
if ((build)); then
    printf '[bench] building (release)\n' >&2
    (cd "$REPO_ROOT" && cargo build --release --locked -p meshtrust-cli -p meshtrust-testkit \
        --bin meshtrust --bench fleet_scale) >&2 || die "the release build failed"
fi
fleet=$(ls -t "$REPO_ROOT"/target/release/deps/fleet_scale-* 2>/dev/null | grep -v '\.d$' | head -n 1 || true)
[[ -x "$bin" && -x "$fleet" ]] || die "no release build of meshtrust and the fleet_scale bench"

work=$(mktemp -d "${TMPDIR:-/tmp}/fleet-scale.XXXXXX")
trap 'rm -rf "$work"' EXIT
results="$work/results.jsonl"
for n in $sizes; do
    printf '[bench] %s clusters\n' "$n" >&2
    "$fleet" --meshtrust "$bin" --clusters "$n" --report-every-ms "$every" --work "$work/$n" \
        2> >(grep -v 'slow' >&2) >>"$results" || die "the run of $n clusters failed"
done

printf '\n| clusters | enroll (s) | rotate (s) | rotate ÷ 10-cluster | reports | renewals | serve CPU in rotation (s) | serve peak RSS (MB) | RSS ÷ 10-cluster |\n'
printf '|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
jq -rs '(.[0]) as $b | .[] |
    "| \(.clusters) | \(.enroll_seconds*100|round/100) | \(.rotate_seconds*10|round/10) | \(.rotate_seconds/$b.rotate_seconds*10|round/10)× | \(.reports) | \(.renewals) | \(.serve_cpu_seconds*10|round/10) | \(.serve_rss_peak_mb*10|round/10) | \(.serve_rss_peak_mb/$b.serve_rss_peak_mb*100|round/100)× |"' "$results"

python3 - "$results" "$REPO_ROOT/docs/fleet-scale.svg" <<'EOF'
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
W, H, L, R, T, B = 640, 360, 70, 70, 40, 50
xs = [math.log10(r["clusters"]) for r in rows]
x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
def X(v): return L + (math.log10(v) - x0) / (x1 - x0) * (W - L - R)
tmax = max(r["rotate_seconds"] for r in rows) * 1.15
mmax = max(r["serve_rss_peak_mb"] for r in rows) * 1.15
def Yt(v): return H - B - v / tmax * (H - T - B)
def Ym(v): return H - B - v / mmax * (H - T - B)
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W/2}" y="20" text-anchor="middle" font-size="14">meshtrust serve: root rotation across N clusters (agents simulated)</text>',
       f'<line x1="{L}" y1="{H-B}" x2="{W-R}" y2="{H-B}" stroke="black"/>',
       f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H-B}" stroke="#1f77b4"/>',
       f'<line x1="{W-R}" y1="{T}" x2="{W-R}" y2="{H-B}" stroke="#d62728"/>',
       f'<text x="{W/2}" y="{H-12}" text-anchor="middle">clusters (log scale)</text>',
       f'<text x="16" y="{H/2}" transform="rotate(-90 16 {H/2})" text-anchor="middle" fill="#1f77b4">rotation time (s)</text>',
       f'<text x="{W-16}" y="{H/2}" transform="rotate(90 {W-16} {H/2})" text-anchor="middle" fill="#d62728">service peak RSS (MB)</text>']
for r in rows:
    x = X(r["clusters"])
    out.append(f'<text x="{x}" y="{H-B+16}" text-anchor="middle">{r["clusters"]}</text>')
for i in range(5):
    t, m = tmax * i / 4, mmax * i / 4
    out.append(f'<text x="{L-6}" y="{Yt(t)+4}" text-anchor="end" fill="#1f77b4">{t:.0f}</text>')
    out.append(f'<text x="{W-R+6}" y="{Ym(m)+4}" fill="#d62728">{m:.0f}</text>')
for key, Y, colour in (("rotate_seconds", Yt, "#1f77b4"), ("serve_rss_peak_mb", Ym, "#d62728")):
    pts = " ".join(f'{X(r["clusters"]):.1f},{Y(r[key]):.1f}' for r in rows)
    out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
    for r in rows:
        out.append(f'<circle cx="{X(r["clusters"]):.1f}" cy="{Y(r[key]):.1f}" r="4" fill="{colour}"/>')
out.append('</svg>')
open(sys.argv[2], "w").write("\n".join(out) + "\n")
EOF
printf '\nplot: docs/fleet-scale.svg\n'
