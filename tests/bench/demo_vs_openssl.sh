#!/usr/bin/env bash
# Benchmark `meshtrust demo` against the openssl pipeline that Istio's
# tools/certs/Makefile.selfsigned.mk runs (`make root-ca` followed by
# `make <cluster>-cacerts` for every cluster), in the same run, on the same
# machine, and print the ratio as a markdown table.
#
# Usage:
#   tests/bench/demo_vs_openssl.sh [--clusters N] [--key-type T] [--runs R]
#                                  [--bin PATH] [--all]
#
#   --clusters N   number of clusters (default 100)
#   --key-type T   ecdsa-p256 | ecdsa-p384 | rsa-2048 | rsa-3072 | rsa-4096
#                  (default ecdsa-p256)
#   --runs R       timed runs per tool; the median is reported (default 3)
#   --bin PATH     meshtrust binary (default $MESHTRUST_BIN, else
#                  target/release/meshtrust under the repo root, built with
#                  `cargo build --release -p meshtrust-cli` if missing)
#   --all          ecdsa-p256 then rsa-4096, back to back; rsa-4096 defaults
#                  to 1 run unless --runs is given (4096-bit key generation
#                  for 101 keys takes minutes with openssl)
#
# The openssl baseline, like the Makefile, is sequential, one process per
# step, with the same key type as meshtrust:
#   root:        genpkey; write root-ca.conf; req -new;
#                x509 -req -days 3650 -signkey (CA:TRUE critical, keyUsage
#                critical, SKI)
#   per cluster: mkdir -p; genpkey; write <c>/intermediate.conf
#                (O=Istio, CN=Intermediate CA, L=<c>,
#                SAN DNS:istiod.istio-system.svc); req -new;
#                x509 -req -days 730 -CA root-cert.pem -CAkey root-key.pem
#                -CAcreateserial (CA:TRUE critical pathlen:0, ...);
#                cat ca-cert.pem root-cert.pem > cert-chain.pem;
#                cp root-cert.pem <c>/
# Config files are written with bash builtins (the Makefile spawns one shell
# per `echo` line), so the baseline is, if anything, slightly flattered.
#
# Each run times both tools into fresh temp dirs (the order alternates between
# runs), then checks both outputs: every expected file is present and
# non-empty; for the first and last cluster `openssl verify -CAfile
# root-cert.pem -untrusted cert-chain.pem ca-cert.pem` passes, the chain is
# intermediate then root, the cluster root-cert.pem is the root, each key
# matches its certificate, and the key type is the requested one.
#
# Progress goes to stderr; the markdown table goes to stdout.
set -euo pipefail

KEY_TYPES="ecdsa-p256 ecdsa-p384 rsa-2048 rsa-3072 rsa-4096"

usage() {
    sed -n '2,/^set -euo pipefail/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
}

die() {
    printf 'demo_vs_openssl: error: %s\n' "$*" >&2
    exit 1
}

log() {
    printf '[bench] %s\n' "$*" >&2
}

is_pos_int() {
    [[ "$1" =~ ^[1-9][0-9]*$ ]]
}

# ---------------------------------------------------------------- arguments
clusters=100
key_type=ecdsa-p256
key_type_given=0
runs=3
runs_given=0
bin="${MESHTRUST_BIN:-}"
bin_given=0
[[ -n "$bin" ]] && bin_given=1
all=0

while (($#)); do
    case "$1" in
    --clusters) [[ $# -ge 2 ]] || die "--clusters needs a value"; clusters=$2; shift 2 ;;
    --clusters=*) clusters=${1#*=}; shift ;;
    --key-type) [[ $# -ge 2 ]] || die "--key-type needs a value"; key_type=$2; key_type_given=1; shift 2 ;;
    --key-type=*) key_type=${1#*=}; key_type_given=1; shift ;;
    --runs) [[ $# -ge 2 ]] || die "--runs needs a value"; runs=$2; runs_given=1; shift 2 ;;
    --runs=*) runs=${1#*=}; runs_given=1; shift ;;
    --bin) [[ $# -ge 2 ]] || die "--bin needs a value"; bin=$2; bin_given=1; shift 2 ;;
    --bin=*) bin=${1#*=}; bin_given=1; shift ;;
    --all) all=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
done

is_pos_int "$clusters" || die "--clusters must be a positive integer, got '$clusters'"
is_pos_int "$runs" || die "--runs must be a positive integer, got '$runs'"
case " $KEY_TYPES " in
*" $key_type "*) ;;
*) die "--key-type must be one of: $KEY_TYPES (got '$key_type')" ;;
esac
if ((all && key_type_given)); then
    die "--all and --key-type are mutually exclusive"
fi

command -v openssl >/dev/null || die "openssl not found in PATH"

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# ------------------------------------------------------------------- binary
if ((bin_given)); then
    [[ -x "$bin" ]] || die "meshtrust binary '$bin' does not exist or is not executable"
else
    bin="$REPO_ROOT/target/release/meshtrust"
    if [[ ! -x "$bin" ]]; then
        log "$bin missing; building: cargo build --release -p meshtrust-cli"
        (cd "$REPO_ROOT" && cargo build --release -p meshtrust-cli) >&2
        [[ -x "$bin" ]] || die "build finished but $bin is still missing"
    fi
fi
# Absolute path: the pipelines below cd around.
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

# ------------------------------------------------------------------ tempdir
WORK=$(mktemp -d "${TMPDIR:-/tmp}/meshtrust-bench.XXXXXX")
cleanup() { rm -rf -- "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ helpers
now_ns() {
    date +%s%N
}

# Seconds (3 decimals) between two nanosecond timestamps.
elapsed_s() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'
}

# Median of the arguments (mean of the middle two for an even count).
median() {
    printf '%s\n' "$@" | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR % 2) printf "%.3f", v[(NR + 1) / 2]
            else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2
        }'
}

# genpkey arguments for a key type.
genpkey_args() {
    case "$1" in
    ecdsa-p256) echo "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" ;;
    ecdsa-p384) echo "-algorithm EC -pkeyopt ec_paramgen_curve:P-384" ;;
    rsa-2048) echo "-algorithm RSA -pkeyopt rsa_keygen_bits:2048" ;;
    rsa-3072) echo "-algorithm RSA -pkeyopt rsa_keygen_bits:3072" ;;
    rsa-4096) echo "-algorithm RSA -pkeyopt rsa_keygen_bits:4096" ;;
    esac
}

# "<algorithm marker>|<bits>" as printed by `openssl x509 -noout -text`.
expected_pubkey() {
    case "$1" in
    ecdsa-p256) echo "id-ecPublicKey|256" ;;
    ecdsa-p384) echo "id-ecPublicKey|384" ;;
    rsa-2048) echo "rsaEncryption|2048" ;;
    rsa-3072) echo "rsaEncryption|3072" ;;
    rsa-4096) echo "rsaEncryption|4096" ;;
    esac
}

cluster_names() {
    local n=$1 i
    for ((i = 1; i <= n; i++)); do
        printf 'cluster%d\n' "$i"
    done
}

# ---------------------------------------------------------------- openssl
# The Makefile.selfsigned.mk pipeline: `root-ca`, then `<c>-cacerts` for each
# cluster, sequentially, one process per step. Runs in a subshell with -e.
openssl_pipeline() {
    local out=$1 kt=$2 n=$3 c
    local -a gen
    read -r -a gen <<<"$(genpkey_args "$kt")"

    mkdir -p "$out"
    cd "$out"

    # --- root-ca
    openssl genpkey "${gen[@]}" -out root-key.pem
    printf '%s\n' \
        '[ req ]' \
        'encrypt_key = no' \
        'prompt = no' \
        'utf8 = yes' \
        'default_md = sha256' \
        'req_extensions = req_ext' \
        'x509_extensions = req_ext' \
        'distinguished_name = req_dn' \
        '[ req_ext ]' \
        'subjectKeyIdentifier = hash' \
        'basicConstraints = critical, CA:true' \
        'keyUsage = critical, digitalSignature, keyCertSign, cRLSign' \
        '[ req_dn ]' \
        'O = Istio' \
        'CN = Root CA' >root-ca.conf
    openssl req -new -key root-key.pem -config root-ca.conf -out root-cert.csr
    openssl x509 -req -days 3650 -signkey root-key.pem \
        -extensions req_ext -extfile root-ca.conf \
        -in root-cert.csr -out root-cert.pem

    # --- <c>-cacerts
    for ((i = 1; i <= n; i++)); do
        c="cluster$i"
        mkdir -p "$c"
        openssl genpkey "${gen[@]}" -out "$c/ca-key.pem"
        printf '%s\n' \
            '[ req ]' \
            'encrypt_key = no' \
            'prompt = no' \
            'utf8 = yes' \
            'default_md = sha256' \
            'req_extensions = req_ext' \
            'x509_extensions = req_ext' \
            'distinguished_name = req_dn' \
            '[ req_ext ]' \
            'subjectKeyIdentifier = hash' \
            'basicConstraints = critical, CA:true, pathlen:0' \
            'keyUsage = critical, digitalSignature, keyCertSign, cRLSign' \
            'subjectAltName=@san' \
            '[ san ]' \
            'DNS.1 = istiod.istio-system.svc' \
            '[ req_dn ]' \
            'O = Istio' \
            'CN = Intermediate CA' \
            "L = $c" >"$c/intermediate.conf"
        openssl req -new -config "$c/intermediate.conf" -key "$c/ca-key.pem" \
            -out "$c/cluster-ca.csr"
        openssl x509 -req -days 730 \
            -CA root-cert.pem -CAkey root-key.pem -CAcreateserial \
            -extensions req_ext -extfile "$c/intermediate.conf" \
            -in "$c/cluster-ca.csr" -out "$c/ca-cert.pem"
        cat "$c/ca-cert.pem" root-cert.pem >"$c/cert-chain.pem"
        cp root-cert.pem "$c/"
    done
}

meshtrust_demo() {
    local out=$1 kt=$2 n=$3
    local list
    list=$(cluster_names "$n" | paste -sd, -)
    "$bin" demo --clusters "$list" --out "$out" --key-type "$kt"
}

# Run "$@" (a function above) with -e in a subshell, output to $log; print the
# elapsed seconds on stdout. On failure show the log tail and abort.
timed() {
    local what=$1 log=$2 t0 t1 rc
    shift 2
    t0=$(now_ns)
    set +e
    (
        set -euo pipefail
        "$@"
    ) >"$log" 2>&1
    rc=$?
    set -e
    t1=$(now_ns)
    if ((rc != 0)); then
        log "$what failed (exit $rc); last lines of $log:"
        tail -n 20 "$log" >&2
        exit 1
    fi
    elapsed_s "$t0" "$t1"
}

# ------------------------------------------------------------ verification
fingerprint() {
    openssl x509 -noout -fingerprint -sha256 -in "$1"
}

# Extract certificate number $2 (1-based) from PEM bundle $1 to stdout.
nth_cert() {
    awk -v want="$2" '
        /-----BEGIN CERTIFICATE-----/ { n++ }
        n == want { print }
        /-----END CERTIFICATE-----/ && n == want { exit }' "$1"
}

check_pubkey_type() {
    local what=$1 cert=$2 kt=$3 exp marker bits text
    exp=$(expected_pubkey "$kt")
    marker=${exp%|*}
    bits=${exp#*|}
    text=$(openssl x509 -noout -text -in "$cert")
    if ! grep -q "Public Key Algorithm: $marker" <<<"$text" ||
        ! grep -q "Public-Key: ($bits bit)" <<<"$text"; then
        die "$what: $cert is not a $kt certificate"
    fi
}

check_key_matches() {
    local what=$1 key=$2 cert=$3
    if [[ "$(openssl pkey -in "$key" -pubout)" != "$(openssl x509 -noout -pubkey -in "$cert")" ]]; then
        die "$what: $key does not match $cert"
    fi
}

verify_output() {
    local what=$1 out=$2 kt=$3 n=$4 c f missing=0 d root_fp
    for f in root-cert.pem root-key.pem; do
        [[ -s "$out/$f" ]] || { log "$what: missing $out/$f"; missing=1; }
    done
    while read -r c; do
        for f in ca-cert.pem ca-key.pem cert-chain.pem root-cert.pem; do
            [[ -s "$out/$c/$f" ]] || { log "$what: missing $out/$c/$f"; missing=1; }
        done
    done < <(cluster_names "$n")
    ((missing == 0)) || die "$what: output incomplete"

    check_pubkey_type "$what" "$out/root-cert.pem" "$kt"
    check_key_matches "$what" "$out/root-key.pem" "$out/root-cert.pem"
    root_fp=$(fingerprint "$out/root-cert.pem")

    for c in cluster1 "cluster$n"; do
        d="$out/$c"
        if ! (cd "$d" && openssl verify -CAfile root-cert.pem -untrusted cert-chain.pem ca-cert.pem) >/dev/null 2>&1; then
            (cd "$d" && openssl verify -CAfile root-cert.pem -untrusted cert-chain.pem ca-cert.pem) >&2 || true
            die "$what: openssl verify failed for $c"
        fi
        [[ "$(fingerprint "$d/root-cert.pem")" == "$root_fp" ]] ||
            die "$what: $c/root-cert.pem is not the root certificate"
        [[ "$(grep -c -- '-----BEGIN CERTIFICATE-----' "$d/cert-chain.pem")" == 2 ]] ||
            die "$what: $c/cert-chain.pem does not hold exactly 2 certificates"
        [[ "$(nth_cert "$d/cert-chain.pem" 1 | openssl x509 -noout -fingerprint -sha256)" == "$(fingerprint "$d/ca-cert.pem")" ]] ||
            die "$what: $c/cert-chain.pem does not start with ca-cert.pem"
        [[ "$(nth_cert "$d/cert-chain.pem" 2 | openssl x509 -noout -fingerprint -sha256)" == "$root_fp" ]] ||
            die "$what: $c/cert-chain.pem does not end with the root certificate"
        check_pubkey_type "$what" "$d/ca-cert.pem" "$kt"
        check_key_matches "$what" "$d/ca-key.pem" "$d/ca-cert.pem"
    done
}

# ---------------------------------------------------------------- benchmark
ROWS=()
NOTES=()

bench() {
    local kt=$1 n=$2 r=$3 i o_dir m_dir o_s m_s med_o med_m ratio
    local -a o_times=() m_times=()
    log "$kt, $n clusters, $r run(s)"
    for ((i = 1; i <= r; i++)); do
        o_dir="$WORK/$kt-run$i-openssl"
        m_dir="$WORK/$kt-run$i-meshtrust"
        mkdir -p "$o_dir" "$m_dir"
        # Alternate the order so neither tool always runs on a warmer machine.
        if ((i % 2)); then
            o_s=$(timed "openssl pipeline" "$o_dir/log" openssl_pipeline "$o_dir/out" "$kt" "$n")
            m_s=$(timed "meshtrust demo" "$m_dir/log" meshtrust_demo "$m_dir/out" "$kt" "$n")
        else
            m_s=$(timed "meshtrust demo" "$m_dir/log" meshtrust_demo "$m_dir/out" "$kt" "$n")
            o_s=$(timed "openssl pipeline" "$o_dir/log" openssl_pipeline "$o_dir/out" "$kt" "$n")
        fi
        verify_output "openssl pipeline" "$o_dir/out" "$kt" "$n"
        verify_output "meshtrust demo" "$m_dir/out" "$kt" "$n"
        log "  run $i/$r: openssl ${o_s}s, meshtrust ${m_s}s (outputs verified)"
        o_times+=("$o_s")
        m_times+=("$m_s")
        # Outputs are kept until the script exits: deleting them here would make the next
        # run's file creations scan ext4's recently-deleted inodes, which measured as a
        # 3x swing for meshtrust (whose time is mostly file creation) and little for openssl.
    done
    med_o=$(median "${o_times[@]}")
    med_m=$(median "${m_times[@]}")
    ratio=$(awk -v o="$med_o" -v m="$med_m" 'BEGIN {
        if (m <= 0) print "n/a"; else printf "%.1f×", o / m }')
    ROWS+=("| $kt | $n | $r | $med_o | $med_m | $ratio |")
}

if ((all)); then
    bench ecdsa-p256 "$clusters" "$runs"
    rsa_runs=$runs
    if ((!runs_given)); then
        rsa_runs=1
        NOTES+=("rsa-4096 used 1 run (the --all default, since openssl 4096-bit key generation is slow); pass --runs to change it.")
    fi
    bench rsa-4096 "$clusters" "$rsa_runs"
else
    bench "$key_type" "$clusters" "$runs"
fi

# ------------------------------------------------------------------- report
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
mt_version=$("$bin" --version 2>/dev/null | head -n 1 || true)
loadavg=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || true)

echo "| key type | clusters | runs | openssl median (s) | meshtrust median (s) | ratio (openssl/meshtrust) |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
printf '%s\n' "${ROWS[@]}"
echo
echo "- nproc: $(nproc)"
echo "- openssl: $(openssl version)"
[[ -n "$cpu" ]] && echo "- cpu: $cpu"
echo "- kernel: $(uname -srm)"
[[ -n "$mt_version" ]] && echo "- meshtrust: $mt_version"
[[ -n "$loadavg" ]] && echo "- load average at end: $loadavg"
echo "- openssl baseline: Istio tools/certs/Makefile.selfsigned.mk steps (root-ca, then <cluster>-cacerts per cluster), sequential, one process per step"
echo "- timing: wall clock via date +%s%N; order of the two tools alternates between runs"
for note in "${NOTES[@]+"${NOTES[@]}"}"; do
    echo "- $note"
done
