#!/usr/bin/env bash
# Benchmark `meshtrust serve` against `cfssl serve` and against the in-process limit, in
# the same run, on the same machine, and print the figures as markdown tables (issue 11,
# "Performance"; docs/BENCHMARKS.md).
#
# Usage:
#   tests/bench/serve_vs_cfssl.sh [--runs K] [--requests N] [--connections C]
#                                 [--storm N] [--no-postgres] [--keep]
#
#   --runs K         rounds; each round runs every system once, in alternating order
#                    (default 3); medians are reported, with the min–max range
#   --requests N     enrollments (and cfssl signings, and in-process signings) per
#                    system per round (default 10000)
#   --connections C  concurrent keep-alive TLS connections (default 16)
#   --storm N        clusters of the enrollment storm, once per store per round
#                    (default 1000; 0 skips it)
#   --no-postgres    measure the SQLite store only
#   --keep           keep the work directory (stores, logs, raw results)
#   --no-build       use target/release/meshtrust and the newest serve_load bench binary
#                    as they are (for repeated runs while nothing changed)
#
# What runs:
#   - `cargo build --release --locked -p meshtrust-cli -p meshtrust-testkit --bin meshtrust
#     --bench serve_load`: one cargo invocation, so that the two share one feature set and
#     the AWS SDK is built once (the script checks that only one build of aws-sdk-acmpca
#     was used).
#   - golang-cfssl is installed with apt-get if `cfssl` is missing (nothing else is
#     installed: curl, jq and openssl must be present).
#   - `meshtrust root create`: the root for both meshtrust serve and cfssl serve.
#   - `meshtrust serve` with a self-issued serving certificate (leaf + root), the SQLite
#     store in the work directory (under $TMPDIR, default /tmp; refused if that is a
#     tmpfs: the point is durable commits), and, unless --no-postgres, a second
#     `meshtrust serve` on PostgreSQL: MESHTRUST_TEST_POSTGRES_URL's server if set (in a
#     fresh database, dropped on exit), else a server started here as run-all.sh does
#     (initdb as the postgres user, a temporary directory, a random loopback port).
#     limits.requests_per_minute is raised so that the untimed creation of N tokens by
#     the admin is not rate limited; every enrollment is another cluster's first request.
#   - `cfssl serve` over TLS (a P-256 leaf for 127.0.0.1 signed by the same root),
#     signing with the same root and a profile with ca_constraint (pathlen 0).
#   - the load client tests/benches/serve_load.rs, in a second process: modes enroll,
#     cfssl, in-process (all cores, no HTTP, no store) and storm.
# After the load: each service's RSS high-water mark (VmHWM in /proc/PID/status), and a
# check that the store lists every cluster that got a 200 (GET /v1/admin/clusters).
#
# Progress goes to stderr; the tables go to stdout. Every process started here is
# stopped on exit.
set -euo pipefail

die() {
    printf 'serve_vs_cfssl: error: %s\n' "$*" >&2
    exit 1
}

log() {
    printf '[bench] %s\n' "$*" >&2
}

usage() {
    sed -n '2,/^set -euo pipefail/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
}

is_count() {
    [[ "$1" =~ ^[0-9]+$ ]]
}

# ---------------------------------------------------------------- arguments
runs=3
requests=10000
connections=16
storm=1000
postgres=1
keep=0
build=1
while (($#)); do
    case "$1" in
    --runs) [[ $# -ge 2 ]] || die "--runs needs a value"; runs=$2; shift 2 ;;
    --requests) [[ $# -ge 2 ]] || die "--requests needs a value"; requests=$2; shift 2 ;;
    --connections) [[ $# -ge 2 ]] || die "--connections needs a value"; connections=$2; shift 2 ;;
    --storm) [[ $# -ge 2 ]] || die "--storm needs a value"; storm=$2; shift 2 ;;
    --no-postgres) postgres=0; shift ;;
    --keep) keep=1; shift ;;
    --no-build) build=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
done
for v in runs requests connections; do
    is_count "${!v}" && ((${!v} > 0)) || die "--$v must be a positive integer, got '${!v}'"
done
is_count "$storm" || die "--storm must be a count, got '$storm'"

for tool in curl jq openssl; do
    command -v "$tool" >/dev/null || die "$tool not found in PATH: apt-get install $tool"
done

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# ------------------------------------------------------------------ cleanup
PIDS=()
PG_DIR=""
PG_DB=""
WORK=""
PG_BIN=/usr/lib/postgresql/15/bin
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}
cleanup() {
    local pid
    for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n "$PG_DB" ]]; then
        psql "$PG_ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1 || true
    fi
    if [[ -n "$PG_DIR" ]]; then
        as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf -- "$PG_DIR"
    fi
    if [[ -n "$WORK" ]]; then
        if ((keep)); then log "kept $WORK"; else rm -rf -- "$WORK"; fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------- build
bin="$REPO_ROOT/target/release/meshtrust"
if ((build)); then
    log "building (release): meshtrust and the load client, in one cargo invocation"
    build_json=$(mktemp "${TMPDIR:-/tmp}/serve-bench-build.XXXXXX")
    (cd "$REPO_ROOT" && cargo build --release --locked -p meshtrust-cli -p meshtrust-testkit \
        --bin meshtrust --bench serve_load --message-format=json) >"$build_json" ||
        { rm -f "$build_json"; die "the release build failed"; }
    load=$(jq -r 'select(.reason == "compiler-artifact" and .target.name == "serve_load") | .executable' "$build_json" | tail -n 1)
    aws_builds=$(jq -r 'select(.reason == "compiler-artifact" and .target.name == "aws_sdk_acmpca") | .filenames[]' "$build_json" | grep -c '\.rlib$' || true)
    rm -f "$build_json"
    [[ -x "$bin" && -x "$load" ]] || die "the build did not produce $bin and the serve_load bench"
    ((aws_builds == 1)) || die "aws-sdk-acmpca was built $aws_builds times (features differ between meshtrust and the bench)"
else
    load=$(ls -t "$REPO_ROOT"/target/release/deps/serve_load-* 2>/dev/null | grep -v '\.d$' | head -n 1 || true)
    [[ -x "$bin" && -x "$load" ]] || die "--no-build: build first (run once without --no-build)"
fi

if ! command -v cfssl >/dev/null; then
    log "installing golang-cfssl"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq golang-cfssl >&2
fi

# ----------------------------------------------------------------- workdir
WORK=$(mktemp -d "${TMPDIR:-/tmp}/serve-bench.XXXXXX")
fs_type=$(df --output=fstype "$WORK" | tail -n 1)
fs_source=$(df --output=source "$WORK" | tail -n 1)
[[ "$fs_type" != tmpfs && "$fs_type" != ramfs ]] ||
    die "$WORK is on $fs_type: the SQLite store must be on a disk (set TMPDIR to a directory on one)"
log "work directory $WORK ($fs_type on $fs_source)"

"$bin" root create --out "$WORK/root" >/dev/null 2>&1 || die "meshtrust root create failed"
ROOT_PEM="$WORK/root/root-cert.pem"
head -c 48 /dev/urandom | base64 | tr -d '/+=\n' >"$WORK/admin-token"
chmod 600 "$WORK/admin-token"

# ------------------------------------------------------------- meshtrust
# Starts `meshtrust serve` on $2 (a store URL) as system $1; sets URL_$1 and PID_$1.
start_serve() {
    local tag=$1 store=$2 i url=""
    cat >"$WORK/serve-$tag.yaml" <<EOF
listen: 127.0.0.1:0
tls: { self_issued: [127.0.0.1] }
issuer: { root_dir: $WORK/root }
store: $store
admin_token_file: $WORK/admin-token
limits: { requests_per_minute: 100000000 }
EOF
    "$bin" serve --config "$WORK/serve-$tag.yaml" --audit-log "$WORK/audit-$tag.log" \
        2>"$WORK/serve-$tag.log" &
    local pid=$!
    PIDS+=("$pid")
    for ((i = 0; i < 300; i++)); do
        url=$(grep -so 'listening on https://[0-9.:]*' "$WORK/serve-$tag.log" | sed 's/listening on //' || true)
        [[ -n "$url" ]] && break
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$WORK/serve-$tag.log" >&2; die "meshtrust serve ($tag) exited"; }
        sleep 0.1
    done
    [[ -n "$url" ]] || die "meshtrust serve ($tag) did not start listening within 30 s"
    curl -fsS --cacert "$ROOT_PEM" "$url/healthz" >/dev/null || die "meshtrust serve ($tag): /healthz failed"
    printf -v "URL_$tag" '%s' "$url"
    printf -v "PID_$tag" '%s' "$pid"
    log "meshtrust serve ($tag) at $url, pid $pid"
}

start_serve sqlite "sqlite://$WORK/meshtrust.db"
SYSTEMS=(sqlite)

if ((postgres)); then
    if [[ -n "${MESHTRUST_TEST_POSTGRES_URL:-}" ]]; then
        PG_ADMIN_URL=$MESHTRUST_TEST_POSTGRES_URL
    else
        [[ -x "$PG_BIN/initdb" ]] || die "PostgreSQL 15 is not installed (apt-get install postgresql), or pass --no-postgres"
        PG_DIR=$(mktemp -d /tmp/serve-bench-pg.XXXXXX)
        PG_PORT=$((20000 + RANDOM % 20000))
        chown postgres "$PG_DIR" 2>/dev/null || sudo chown postgres "$PG_DIR"
        as_postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U meshtrust >/dev/null
        as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
            -o "-k $PG_DIR -p $PG_PORT -c listen_addresses=127.0.0.1" start >/dev/null
        PG_ADMIN_URL="postgres://meshtrust@127.0.0.1:$PG_PORT/postgres"
    fi
    PG_DB="meshtrust_bench_$$_$RANDOM"
    psql "$PG_ADMIN_URL" -qAtc "CREATE DATABASE $PG_DB" >/dev/null || die "cannot create database $PG_DB at $PG_ADMIN_URL"
    start_serve postgres "${PG_ADMIN_URL%/*}/$PG_DB"
    pg_version=$(psql "$PG_ADMIN_URL" -qAtc "SHOW server_version")
    pg_sync=$(psql "$PG_ADMIN_URL" -qAtc "SHOW synchronous_commit")
    SYSTEMS+=(postgres)
fi

# ----------------------------------------------------------------- cfssl
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$WORK/cfssl-tls-key.pem" -out "$WORK/cfssl-tls.csr" 2>/dev/null
printf '%s\n' 'basicConstraints = critical, CA:FALSE' 'keyUsage = critical, digitalSignature' \
    'extendedKeyUsage = serverAuth' 'subjectAltName = IP:127.0.0.1' >"$WORK/cfssl-tls.ext"
openssl x509 -req -in "$WORK/cfssl-tls.csr" -CA "$ROOT_PEM" -CAkey "$WORK/root/root-key.pem" \
    -CAcreateserial -days 30 -extfile "$WORK/cfssl-tls.ext" -out "$WORK/cfssl-tls-leaf.pem" 2>/dev/null
cat "$WORK/cfssl-tls-leaf.pem" "$ROOT_PEM" >"$WORK/cfssl-tls-chain.pem"
cat >"$WORK/cfssl-config.json" <<'EOF'
{"signing": {"default": {"expiry": "17520h",
  "usages": ["cert sign", "crl sign", "digital signature"],
  "ca_constraint": {"is_ca": true, "max_path_len": 0, "max_path_len_zero": true}}}}
EOF
cfssl_port=""
for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 20000))
    cfssl serve -address 127.0.0.1 -port "$port" -ca "$ROOT_PEM" -ca-key "$WORK/root/root-key.pem" \
        -config "$WORK/cfssl-config.json" -tls-cert "$WORK/cfssl-tls-chain.pem" \
        -tls-key "$WORK/cfssl-tls-key.pem" -loglevel 3 2>"$WORK/cfssl.log" &
    pid=$!
    for ((i = 0; i < 100; i++)); do
        if curl -fsS --cacert "$ROOT_PEM" -d '{}' "https://127.0.0.1:$port/api/v1/cfssl/info" >/dev/null 2>&1; then
            cfssl_port=$port
            break
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -n "$cfssl_port" ]]; then PIDS+=("$pid"); PID_cfssl=$pid; break; fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
done
[[ -n "$cfssl_port" ]] || { tail -n 20 "$WORK/cfssl.log" >&2; die "cfssl serve did not start"; }
URL_cfssl="https://127.0.0.1:$cfssl_port"
log "cfssl serve at $URL_cfssl, pid $PID_cfssl ($(cfssl version | head -n 1))"

# ----------------------------------------------------------------- load
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"

# Runs one measurement; appends its JSON line, tagged with system and round.
measure() {
    local system=$1 round=$2 mode=$3 line
    shift 3
    line=$("$load" "$mode" "$@") || die "serve_load $mode ($system, round $round) failed"
    jq -c --arg s "$system" --argjson r "$round" '. + {system: $s, round: $r}' <<<"$line" >>"$RESULTS"
    log "  $system: $line"
}

run_system() {
    local system=$1 round=$2 url_var
    case "$system" in
    sqlite | postgres)
        url_var="URL_$system"
        pid_var="PID_$system"
        measure "$system" "$round" enroll --url "${!url_var}" --ca "$ROOT_PEM" \
            --admin-token-file "$WORK/admin-token" --requests "$requests" \
            --connections "$connections" --prefix "r$round" --server-pid "${!pid_var}" ;;
    cfssl)
        measure cfssl "$round" cfssl --url "$URL_cfssl" --ca "$ROOT_PEM" \
            --requests "$requests" --connections "$connections" --server-pid "$PID_cfssl" ;;
    in-process)
        measure in-process "$round" in-process --root "$WORK/root" --requests "$requests" ;;
    esac
}

log "load: $runs round(s), $requests requests, $connections connections, storm $storm"
log "machine before: load average $(cut -d' ' -f1-3 /proc/loadavg)"
ORDER=("${SYSTEMS[@]}" cfssl in-process)
for ((round = 1; round <= runs; round++)); do
    if ((round % 2)); then
        order=("${ORDER[@]}")
    else
        order=()
        for ((i = ${#ORDER[@]} - 1; i >= 0; i--)); do order+=("${ORDER[i]}"); done
    fi
    log "round $round/$runs: ${order[*]}"
    for system in "${order[@]}"; do
        run_system "$system" "$round"
    done
    if ((storm > 0)); then
        for system in "${SYSTEMS[@]}"; do
            url_var="URL_$system"
            pid_var="PID_$system"
            measure "$system-storm" "$round" storm --url "${!url_var}" --ca "$ROOT_PEM" \
                --admin-token-file "$WORK/admin-token" --requests "$storm" --prefix "s$round" \
                --server-pid "${!pid_var}"
        done
    fi
done
loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------- after the load
declare -A RSS
for system in "${SYSTEMS[@]}" cfssl; do
    pid_var="PID_$system"
    RSS[$system]=$(awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/${!pid_var}/status")
done
for system in "${SYSTEMS[@]}"; do
    url_var="URL_$system"
    listed=$(curl -fsS --cacert "$ROOT_PEM" -H "Authorization: Bearer $(cat "$WORK/admin-token")" \
        "${!url_var}/v1/admin/clusters" | jq '[.clusters[] | select(.state == "enrolled")] | length')
    issued=$(jq -s --arg s "$system" \
        '[.[] | select(.system == $s or .system == ($s + "-storm")) | .requests - .errors] | add' "$RESULTS")
    [[ "$listed" == "$issued" ]] ||
        die "$system: $issued enrollments answered 200 but the store lists $listed enrolled clusters"
    log "$system: the store lists all $listed clusters that got a 200"
done

# ---------------------------------------------------------------- report
# "median (min–max)" of field $2 for system $1.
stat_of() {
    jq -rs --arg s "$1" --arg f "$2" '
        [.[] | select(.system == $s) | .[$f]] | sort as $v | ($v | length) as $n
        | if $n == 0 then "n/a" else
            (if $n % 2 == 1 then $v[($n - 1) / 2] else ($v[$n / 2 - 1] + $v[$n / 2]) / 2 end) as $m
            | if $n == 1 then "\($m)" else "\($m) (\($v[0])–\($v[-1]))" end
          end' "$RESULTS"
}
median_of() {
    jq -rs --arg s "$1" --arg f "$2" '
        [.[] | select(.system == $s) | .[$f]] | sort as $v | ($v | length) as $n
        | if $n % 2 == 1 then $v[($n - 1) / 2] else ($v[$n / 2 - 1] + $v[$n / 2]) / 2 end' "$RESULTS"
}
errors_of() {
    jq -s --arg s "$1" '[.[] | select(.system == $s) | .errors] | add' "$RESULTS"
}
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) print "n/a"; else printf "%.2f", a / b }'
}
verdict() {
    awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
        ok = (op == ">=") ? (v >= t) : (v < t); print (ok ? "met" : "NOT met") }'
}

cfssl_rate=$(median_of cfssl rate)
inproc_rate=$(median_of in-process rate)
label_sqlite="meshtrust serve, SQLite ($fs_type)"
label_postgres="meshtrust serve, PostgreSQL ${pg_version:-} (synchronous_commit=${pg_sync:-})"

echo "| system | rate (req/s) | p50 (ms) | p99 (ms) | server CPU (µs/req) | RSS VmHWM (MB) | errors |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for system in "${SYSTEMS[@]}" cfssl in-process; do
    case "$system" in
    sqlite) label=$label_sqlite ;;
    postgres) label=$label_postgres ;;
    cfssl) label="cfssl serve $(cfssl version | awk '/Version/ { print $2 }') (no database)" ;;
    in-process) label="in-process limit ($(nproc) threads)" ;;
    esac
    cpu_field=server_cpu_us_per_request
    [[ "$system" == in-process ]] && cpu_field=client_cpu_us_per_request
    echo "| $label | $(stat_of "$system" rate) | $(stat_of "$system" p50_ms) | $(stat_of "$system" p99_ms) | $(median_of "$system" "$cpu_field") | ${RSS[$system]:-–} | $(errors_of "$system") |"
done
echo
echo "| target | SQLite | PostgreSQL |"
echo "|---|---|---|"
row() {
    local what=$1 field=$2 op=$3 target=$4 base=$5 cells="" system v
    for system in sqlite postgres; do
        if [[ " ${SYSTEMS[*]} " != *" $system "* ]]; then cells+=" – |"; continue; fi
        case "$field" in
        rate) v=$(ratio "$(median_of "$system" rate)" "$base"); cells+=" ${v}× — $(verdict "$v" "$op" "$target") |" ;;
        p99_ms) v=$(median_of "$system" p99_ms); cells+=" $v ms — $(verdict "$v" "$op" "$target") |" ;;
        rss) v=${RSS[$system]}; cells+=" $v MB — $(verdict "$v" "$op" "$target") |" ;;
        esac
    done
    echo "| $what |$cells"
}
row "≥ 1.5× cfssl's throughput" rate ">=" 1.5 "$cfssl_rate"
row "≥ 50 % of the in-process limit" rate ">=" 0.5 "$inproc_rate"
row "p99 < 20 ms at $connections connections" p99_ms "<" 20 0
row "RSS under load < 100 MB" rss "<" 100 0
if ((storm > 0)); then
    echo
    echo "| storm: $storm clusters at once | time to the last certificate (s) | p50 (ms) | p99 (ms) | errors |"
    echo "|---|---:|---:|---:|---:|"
    for system in "${SYSTEMS[@]}"; do
        label_var="label_$system"
        echo "| ${!label_var} | $(stat_of "$system-storm" seconds) | $(stat_of "$system-storm" p50_ms) | $(stat_of "$system-storm" p99_ms) | $(errors_of "$system-storm") |"
    done
fi
echo
echo "- rounds: $runs, alternating order; figures are medians (min–max over rounds)"
echo "- server CPU: user + system time of the server process during the timed phase, per request (/proc/PID/stat; PostgreSQL's own processes not included); in-process: the benchmark's own CPU per signing"
echo "- each meshtrust request: one-time token check, CSR signature and policy check, signing, a durable commit (group commit) of the certificate, the token's use and the audit row, then the answer"
echo "- store directory: $WORK ($fs_type on $fs_source)"
echo "- cpu: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo) × $(nproc)"
echo "- kernel: $(uname -srm)"
echo "- load average at end: $loadavg_end"
