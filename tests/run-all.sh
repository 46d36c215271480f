#!/usr/bin/env bash
# Runs every meshtrust test on a fresh machine. It installs what the suites need first:
#   - openssl (Debian package): the independent verifier of every bundle;
#   - .venv with moto[server] (PyPI): the AWS Private CA emulator. The end-to-end tests start
#     their own emulators on loopback ports from this virtualenv (stock moto, and moto made
#     faithful by tests/aws/faithful_moto.py), one per test, and stop them afterwards;
#   - curl (Debian): the independent HTTP client of `meshtrust serve`'s suites;
#   - PostgreSQL 15 (Debian): a server started here, as the postgres user, in a temporary
#     directory on a loopback port, for the store's suites and two `serve` replicas sharing
#     it (MESHTRUST_TEST_POSTGRES_URL); stopped when this script exits;
#   - strace (Debian): kills `root create`, `cacerts` and `demo` at every file-changing
#     system call in turn (tests/e2e/crash_files.rs);
#   - buildah (Debian, 1.28): builds deploy/Containerfile's final stage from the tested
#     binary into temporary storage (tests/e2e/image.rs); ca-certificates for that image;
#   - bash, zsh and fish (Debian): parse and run `meshtrust completions` scripts; mandoc
#     and groff-base (Debian): render `meshtrust man` pages and report their warnings
#     (tests/e2e/completions.rs);
#   - prometheus (Debian, 2.42) for promtool: checks and unit-tests the alert rules of
#     deploy/monitoring (tests/e2e/monitoring.rs);
#   - helm-python-sdk (PyPI, in .venv): Helm v4's Go SDK as a native library, the real Helm
#     engine that lints and renders deploy/helm/meshtrust (tests/helm/chart.rs).
# Extra arguments are passed to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.5
HELM_SDK_VERSION=0.2.2

sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
apt_install() {
  echo "installing: $*" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"
}

# What is missing is installed in one apt-get run (one index update on a fresh machine).
# Versions are Debian 12's release series; a missing tool fails its suite.
missing=()
need() { # need COMMAND-OR-TEST PACKAGE
  if [[ $1 == /* ]]; then [ -e "$1" ] || missing+=("$2"); else command -v "$1" >/dev/null 2>&1 || missing+=("$2"); fi
}
need openssl openssl
need python3 python3
need curl curl
need jq jq
need ss iproute2                       # e2e_service (the listener's backlog)
need strace strace                     # the crash suites' killer (e2e_crash_files)
need buildah 'buildah=1.28.*'          # e2e_image
need /etc/ssl/certs/ca-certificates.crt ca-certificates
need zsh 'zsh=5.9*'                    # e2e_completions
need chromium chromium                 # e2e_agent (the status page in a real browser)
need fish 'fish=3.6.*'
need mandoc 'mandoc=1.14.*'
need groff groff-base
need promtool 'prometheus=2.42.*'      # e2e_monitoring
PG_BIN=/usr/lib/postgresql/15/bin
need "$PG_BIN/initdb" postgresql
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

PG_DIR=$(mktemp -d /tmp/meshtrust-pg.XXXXXX)
PG_PORT=$((20000 + RANDOM % 20000))
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}
stop_postgres() {
  as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  $sudo rm -rf "$PG_DIR"
}
trap stop_postgres EXIT
$sudo chown postgres "$PG_DIR"
as_postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U meshtrust >/dev/null
as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
  -o "-k $PG_DIR -p $PG_PORT -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
export MESHTRUST_TEST_POSTGRES_URL="postgres://meshtrust@127.0.0.1:$PG_PORT/postgres"

# Both packages at their versions, else the virtualenv is made anew (so an older one is upgraded).
if ! .venv/bin/python -c "import moto, helm_python, sys; sys.exit(moto.__version__ != '$MOTO_VERSION' or helm_python.__version__ != '$HELM_SDK_VERSION')" 2>/dev/null; then
  rm -rf .venv
  python3 -m venv .venv 2>/dev/null || { apt_install python3-venv; python3 -m venv .venv; }
  .venv/bin/pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" \
    "helm-python-sdk==$HELM_SDK_VERSION"
fi

cargo test --workspace --locked "$@"
# The controller suite moves a running controller's clock with --clock-offset-file, a flag
# only test builds have (feature test-clock; the release binary refuses it). --workspace
# keeps every dependency's features as in the run above, so only meshtrust-cli is rebuilt
# (with -p alone, the AWS SDK and its crypto crates would be built a second time).
# The service and agent suites move the service's (and the agents') clocks the same way.
cargo test --workspace --features meshtrust-cli/test-clock --locked --test e2e_controller --test e2e_controller_rotation --test e2e_crash_controller --test e2e_monitoring --test e2e_operator_verbs --test e2e_service --test e2e_service_api --test e2e_agent --test e2e_agent_rotation "$@"
# Coverage-guided fuzzing of the parsers, bounded: 20 s per target from its seed corpus
# (tests/fuzz/smoke.sh installs cargo-fuzz when missing; docs/testing.md#fuzzing).
tests/fuzz/smoke.sh 20
