#!/usr/bin/env bash
# Runs every test of tidings: unit, integration and doc tests.
#
# Installs first what the tests need beyond Rust, in a virtual environment
# under target/py (so the system's Python is left alone): Python's
# feedparser, an independent feed reader, and aiosmtpd, a real SMTP server
# the mail tests send to. Arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/py
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import feedparser, aiosmtpd' 2>/dev/null; then
  if ! command -v python3 >/dev/null; then
    echo "scripts/test.sh: installing python3 (Debian packages)" >&2
    apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
  fi
  echo "scripts/test.sh: installing feedparser and aiosmtpd into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check feedparser==6.0.14 aiosmtpd==1.4.6
fi
export TIDINGS_TEST_PYTHON="$PWD/$venv/bin/python"

cargo test --locked "$@"
