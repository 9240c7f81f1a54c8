#!/usr/bin/env bash
# Runs every test of tidings: unit, integration and doc tests.
#
# Installs first what the tests need beyond Rust, in a virtual environment
# under target/py (so the system's Python is left alone): Python's
# feedparser, an independent feed reader, and aiosmtpd, a real SMTP server
# the mail tests send to. Then Debian's chromium and chromium-driver for the
# end-to-end browser test (screenshots go to target/e2e/). Arguments go to
# `cargo test`, e.g. `scripts/test.sh browser` runs only the browser test.
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

# Headless Chromium and its WebDriver server (Debian: chromium, chromium-driver).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "scripts/test.sh: installing chromium and chromium-driver (Debian packages)" >&2
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }; then
      echo "scripts/test.sh: could not install chromium and chromium-driver" >&2
    fi
  fi
fi
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  TIDINGS_TEST_CHROMIUM="$(command -v chromium)"
  TIDINGS_TEST_CHROMEDRIVER="$(command -v chromedriver)"
  export TIDINGS_TEST_CHROMIUM TIDINGS_TEST_CHROMEDRIVER
else
  echo "scripts/test.sh: chromium and chromedriver are not installed (as root: apt-get install chromium chromium-driver);" \
    "the browser test will be skipped, or fail under CI=true" >&2
fi

cargo test --locked "$@"
