#!/usr/bin/env bash
# Runs every meshtrust test on a fresh machine. It installs what the suites need first:
#   - openssl (Debian package): the independent verifier of every bundle;
#   - .venv with moto[server] (PyPI): the AWS Private CA emulator. The end-to-end tests start
#     their own emulators on loopback ports from this virtualenv (stock moto, and moto made
#     faithful by tests/aws/faithful_moto.py), one per test, and stop them afterwards.
# Extra arguments are passed to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.5

sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
apt_install() {
  echo "installing: $*" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"
}

command -v openssl >/dev/null 2>&1 || apt_install openssl
command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv

if ! .venv/bin/python -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  rm -rf .venv
  python3 -m venv .venv 2>/dev/null || { apt_install python3-venv; python3 -m venv .venv; }
  .venv/bin/pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

cargo test --workspace --locked "$@"
# The controller suite moves a running controller's clock with --clock-offset-file, a flag
# only test builds have (feature test-clock; the release binary refuses it). --workspace
# keeps every dependency's features as in the run above, so only meshtrust-cli is rebuilt
# (with -p alone, the AWS SDK and its crypto crates would be built a second time).
cargo test --workspace --features meshtrust-cli/test-clock --locked --test e2e_controller "$@"
