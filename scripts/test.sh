#!/usr/bin/env bash
# Runs every test of tidings: unit, integration and doc tests.
#
# Installs first what the tests need beyond Rust, in a virtual environment
# under target/py (so the system's Python is left alone): Python's
# feedparser, an independent feed reader, and aiosmtpd, a real SMTP server
# the mail tests send to. Then Debian's chromium and chromium-driver for the
# end-to-end browser test (screenshots go to target/e2e/), and dovecot-imapd
# and postfix for the bounce mailbox tests. Arguments go to
# `cargo test`, e.g. `scripts/test.sh browser` runs only the browser test.
#
# Two passes: first every test on SQLite, then the integration tests again
# on PostgreSQL (TIDINGS_TEST_BACKEND=postgres: each test in a database of
# its own, made on the server at TIDINGS_TEST_POSTGRES_URL, by default
# postgres://postgres@127.0.0.1:5432/test). A local server that is stopped
# is started when we are root. With no PostgreSQL the second pass is
# skipped with a message, except under CI=true, where that fails the run.
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

# The bounce mailbox tests' mail servers (Debian: dovecot-imapd, postfix).
# The tests start their own instances, with their own configs in temporary
# folders on free loopback ports; the packaged services are not started
# (policy-rc.d refuses it during the install) nor left running.
if [ ! -x /usr/sbin/dovecot ] || [ ! -x /usr/sbin/postfix ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "scripts/test.sh: installing dovecot-imapd and postfix (Debian packages)" >&2
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    policy=/usr/sbin/policy-rc.d
    policy_added=0
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && policy_added=1
    fi
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd postfix >/dev/null; }; then
      echo "scripts/test.sh: could not install dovecot-imapd and postfix" >&2
    fi
    if [ "$policy_added" = 1 ]; then rm -f "$policy"; fi
  fi
fi
if [ ! -x /usr/sbin/dovecot ] || [ ! -x /usr/sbin/postfix ]; then
  echo "scripts/test.sh: dovecot or postfix is not installed (as root: apt-get install dovecot-imapd postfix);" \
    "the bounce mailbox tests will be skipped, or fail under CI=true" >&2
fi

# Pass 1: everything, on SQLite.
sqlite_status=0
start=$SECONDS
TIDINGS_TEST_BACKEND=sqlite cargo test --locked "$@" || sqlite_status=$?
echo "scripts/test.sh: SQLite pass: $([ $sqlite_status = 0 ] && echo ok || echo "FAILED (exit $sqlite_status)") in $((SECONDS - start)) s" >&2

# Pass 2: the integration tests again, on PostgreSQL.
pg_url="${TIDINGS_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
pg_shown="$(printf '%s' "$pg_url" | sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#')"
in_ci() { [ "${CI:-}" = true ]; }
# 0 the server answers, 1 it does not, 2 cannot tell (no pg_isready here:
# the test harness then checks for itself).
pg_up() {
  command -v pg_isready >/dev/null || return 2
  pg_isready -q -t 3 -d "$pg_url" || return 1
}
pg_state=0
pg_up || pg_state=$?
if [ "$pg_state" = 1 ] && [ "$(id -u)" = 0 ] && command -v pg_ctlcluster >/dev/null \
  && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
  started=0
  for version in $(ls /etc/postgresql); do
    echo "scripts/test.sh: starting PostgreSQL $version (pg_ctlcluster $version main start)" >&2
    if pg_ctlcluster --skip-systemctl-redirect "$version" main start; then started=1; fi
  done
  for _ in $(seq 30); do
    [ "$started" = 1 ] || break
    pg_state=0
    pg_up || pg_state=$?
    [ "$pg_state" = 1 ] || break
    sleep 1
  done
fi

pg_status=0
if [ "$pg_state" = 1 ]; then
  if command -v pg_ctlcluster >/dev/null || command -v postgres >/dev/null; then
    why="the server is not running (as root: pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start)"
  else
    why="PostgreSQL is not installed (Debian: apt-get install postgresql)"
  fi
  if in_ci; then
    echo "scripts/test.sh: FAILED: no PostgreSQL at $pg_shown under CI=true: $why" >&2
    pg_status=1
  else
    echo "scripts/test.sh: SKIPPED: the PostgreSQL pass: no PostgreSQL at $pg_shown: $why;" \
      "set TIDINGS_TEST_POSTGRES_URL to use another server" >&2
  fi
else
  # Only the integration tests need the second pass, unless the arguments
  # choose their own targets.
  targets=(--test it)
  for arg in "$@"; do
    case $arg in
      --) break ;;
      --lib | --bins | --bin | --bin=* | --test | --test=* | --tests | --doc | --examples | --example | --example=* | --benches | --bench | --bench=* | --all-targets)
        targets=() ;;
    esac
  done
  # The `db copy` tests move a SQLite site into a PostgreSQL database of
  # their own whatever the backend: they ran in the first pass.
  skip=(-- --skip db_copy::)
  for arg in "$@"; do
    if [ "$arg" = -- ]; then skip=(--skip db_copy::); fi
  done
  start=$SECONDS
  TIDINGS_TEST_BACKEND=postgres TIDINGS_TEST_POSTGRES_URL="$pg_url" \
    cargo test --locked ${targets[@]+"${targets[@]}"} "$@" "${skip[@]}" || pg_status=$?
  echo "scripts/test.sh: PostgreSQL pass: $([ $pg_status = 0 ] && echo ok || echo "FAILED (exit $pg_status)") in $((SECONDS - start)) s" >&2
fi

[ "$sqlite_status" = 0 ] && [ "$pg_status" = 0 ]
