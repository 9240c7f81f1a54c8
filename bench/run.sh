#!/usr/bin/env bash
# tidings side by side with its peers, in one run, on one machine.
#
#   bench/run.sh [--reps N] [build] [incremental] [digest] [serve] [import] [digest200k] [build100k]
#
# With no names, runs the first five (digest200k, 200,000 subscribers,
# and build100k, a cold build of 100,000 stories in 200 themes against
# Hugo's, only when named: each takes minutes more). Installs what it needs (Debian's hugo,
# postfix for smtp-sink/smtp-source, nginx, wrk, time), generates its own
# data under bench/out/, builds tidings in release mode, runs tidings and
# the peer in turns (REPS times each, default 3) and prints a table of
# medians, spreads and ratios (also written to bench/out/results.md).
# A report, never a pass/fail: machines are shared and noisy, so compare
# the ratio, measured in the same minute, not the seconds.
#
# Sizes can be changed for a quick look:
#   STORIES=20000 THEMES=40 SUBSCRIBERS=50000 BIG_SUBSCRIBERS=200000 DIGEST_THEMES=12
#   DIGEST_STORIES=200 ROWS=1000000 WRK_SECONDS=10 WRK_CONNECTIONS=64
#   BIG_STORIES=100000 BIG_THEMES=200
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

reps=3
wanted=()
while (($#)); do
  case $1 in
    --reps) reps=$2; shift 2 ;;
    build | incremental | digest | serve | import | digest200k | build100k) wanted+=("$1"); shift ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown argument \`$1\` (try --help)" >&2; exit 2 ;;
  esac
done
((${#wanted[@]})) || wanted=(build incremental digest serve import)
wants() { [[ " ${wanted[*]} " == *" $1 "* ]]; }

STORIES=${STORIES:-20000}
THEMES=${THEMES:-40}
SUBSCRIBERS=${SUBSCRIBERS:-50000}
BIG_SUBSCRIBERS=${BIG_SUBSCRIBERS:-200000}
DIGEST_THEMES=${DIGEST_THEMES:-12}
DIGEST_STORIES=${DIGEST_STORIES:-200}
ROWS=${ROWS:-1000000}
WRK_SECONDS=${WRK_SECONDS:-10}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-64}
BIG_STORIES=${BIG_STORIES:-100000}
BIG_THEMES=${BIG_THEMES:-200}
SMTP_PORT=${SMTP_PORT:-12525}
TIDINGS_PORT=18080
NGINX_PORT=18081

# --- tools -----------------------------------------------------------------
need=()
for tool in hugo:hugo smtp-sink:postfix smtp-source:postfix nginx:nginx wrk:wrk /usr/bin/time:time python3:python3 curl:curl; do
  command -v "${tool%%:*}" > /dev/null || need+=("${tool##*:}")
done
if ((${#need[@]})); then
  echo "installing ${need[*]} (Debian packages)…"
  sudo=""
  [[ $(id -u) == 0 ]] || sudo=sudo
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) > /dev/null
fi
cargo build --release --locked --quiet
tidings=$repo/target/release/tidings
gen=$repo/bench/gen.py

out=$repo/bench/out
mkdir -p "$out"
results=$out/results.tsv
: > "$results"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done; }
trap cleanup EXIT

# measure BENCH WHO REP -- COMMAND…: wall seconds and peak resident KB of
# COMMAND, appended to results.tsv. Output goes to $out/last.{out,err}.
measure() {
  local bench=$1 who=$2 rep=$3
  shift 4
  # The wall time by the clock in nanoseconds (`time`'s own is in
  # hundredths, too coarse for a build of 80 ms); the peak memory by `time`.
  local started ended
  started=$(date +%s%N)
  if ! /usr/bin/time -f "%e %M" -o "$out/time" "$@" > "$out/last.out" 2> "$out/last.err"; then
    echo "$bench/$who failed:" >&2
    tail -20 "$out/last.err" >&2
    exit 1
  fi
  ended=$(date +%s%N)
  read -r _ kib < "$out/time"
  secs=$(awk -v ns="$((ended - started))" 'BEGIN { printf "%.3f", ns / 1e9 }')
  printf '%s\t%s\t%s\t%s\t%s\n' "$bench" "$who" "$rep" "$secs" "$kib" >> "$results"
  printf '  %-12s %-12s rep %s: %7.3f s %7.1f MB\n' "$bench" "$who" "$rep" "$secs" "$(awk -v k="$kib" 'BEGIN { print k / 1024 }')"
}

# record BENCH WHO REP VALUE: a figure that is not a command's time
# (messages/s, requests/s).
record() {
  printf '%s\t%s\t%s\t%s\t\n' "$1" "$2" "$3" "$4" >> "$results"
  printf '  %-12s %-12s rep %s: %s\n' "$1" "$2" "$3" "$4"
}

# wait_for URL: until it answers, for up to 30 s.
wait_for() {
  for _ in $(seq 300); do
    curl -fso /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2
  exit 1
}

echo "tidings $(git describe --always --dirty) · $(nproc) cores · $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "$(hugo version | cut -d' ' -f2) · nginx $(nginx -v 2>&1 | cut -d/ -f2) · $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2) · postfix $(dpkg-query -W -f '${Version}' postfix 2> /dev/null)"

# --- 1, 2: cold and incremental build --------------------------------------
corpus=$out/corpus
if wants build || wants incremental || wants serve; then
  if [[ ! -f $corpus/.done-$STORIES-$THEMES ]]; then
    echo "generating $STORIES stories in $THEMES themes…"
    rm -rf "$corpus"
    python3 "$gen" corpus "$corpus" "$STORIES" "$THEMES"
    touch "$corpus/.done-$STORIES-$THEMES"
  fi
  rm -f "$corpus"/content/stories/story-new-*.md
  echo "corpus: $(find "$corpus/content" -name '*.md' | wc -l) files, $(du -sh --apparent-size "$corpus/content" | cut -f1)"
fi
tidings_build=("$tidings" --config "$corpus/config.toml" build)
hugo_build=(hugo --quiet --source "$corpus/hugo")

# The stories read once before the first repetition, so that neither tool
# pays for the disk alone (the first to run would otherwise read them all
# from it: a corpus generated or evicted since the last run).
warm() { find "$1" -type f -exec cat {} + > /dev/null; }

if wants build || wants incremental; then
  echo "1. cold build"
  warm "$corpus/content"
  for rep in $(seq "$reps"); do
    rm -rf "$corpus"/tidings.db* "$corpus/feeds"
    measure build tidings "$rep" -- "${tidings_build[@]}"
    rm -rf "$corpus/hugo/public" "$corpus/hugo/resources"
    measure build hugo "$rep" -- "${hugo_build[@]}"
  done
fi
if wants incremental; then
  echo "2. incremental build: one story added"
  [[ -f $corpus/tidings.db ]] || "${tidings_build[@]}" > /dev/null 2>&1
  [[ -d $corpus/hugo/public ]] || "${hugo_build[@]}" > /dev/null
  "${tidings_build[@]}" > /dev/null 2>&1
  sleep 2.1 # the files just written are older than the racy-stamp window
  for rep in $(seq "$reps"); do
    python3 "$gen" story "$corpus" "$((STORIES + rep))" "$THEMES"
    mv "$corpus/content/stories/story-$((STORIES + rep)).md" "$corpus/content/stories/story-new-$rep.md"
    measure incremental tidings "$rep" -- "${tidings_build[@]}"
    grep -q "1 new" "$out/last.out" || { echo "the incremental build did not see one new story:" >&2; cat "$out/last.out" >&2; exit 1; }
    measure incremental hugo "$rep" -- "${hugo_build[@]}"
    measure unchanged tidings "$rep" -- "${tidings_build[@]}"
  done
  rm -f "$corpus"/content/stories/story-new-*.md
fi

# --- 1b: cold build of a large site -------------------------------------------
if wants build100k; then
  big=$out/corpus-big
  if [[ ! -f $big/.done-$BIG_STORIES-$BIG_THEMES ]]; then
    echo "generating $BIG_STORIES stories in $BIG_THEMES themes…"
    rm -rf "$big"
    python3 "$gen" corpus "$big" "$BIG_STORIES" "$BIG_THEMES"
    touch "$big/.done-$BIG_STORIES-$BIG_THEMES"
  fi
  echo "1b. cold build: $(find "$big/content" -name '*.md' | wc -l) files, $(du -sh --apparent-size "$big/content" | cut -f1)"
  warm "$big/content"
  for rep in $(seq "$reps"); do
    rm -rf "$big"/tidings.db* "$big/feeds"
    measure build-big tidings "$rep" -- "$tidings" --config "$big/config.toml" build
    rm -rf "$big/hugo/public" "$big/hugo/resources"
    measure build-big hugo "$rep" -- hugo --quiet --source "$big/hugo"
  done
fi

# --- 3: digest delivery ------------------------------------------------------
# digest_row NAME ORDER COUNT: COUNT subscribers with their themes in the
# site's order (ORDER site) or each in their own (ORDER own), delivered by
# tidings and, in turns, the same number of messages of tidings' median
# size sent by smtp-source, to the same smtp-sink.
digest_row() {
  local name=$1 order=$2 count=$3
  echo "3. digest delivery ($name): $count subscribers, themes in $order order, $DIGEST_STORIES stories in $DIGEST_THEMES themes, to smtp-sink"
  local site=$out/$name
  rm -rf "$site" && python3 "$gen" digest "$site" "$DIGEST_STORIES" "$DIGEST_THEMES"
  python3 "$gen" people "$site/people.csv" "$count" "$DIGEST_THEMES" "$order"
  # The median message size, from a sample written as .eml files.
  local sample=$out/$name-sample
  rm -rf "$sample" && cp -r "$site" "$sample"
  head -1001 "$site/people.csv" > "$sample/people.csv"
  "$tidings" --config "$sample/config.toml" build > /dev/null 2>&1
  "$tidings" --config "$sample/config.toml" subscribers import "$sample/people.csv" --confirmed > /dev/null
  "$tidings" --config "$sample/config.toml" digest send > /dev/null
  local size
  size=$(find "$sample/outbox" -name '*.eml' -printf '%s\n' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
  echo "  median message: $size bytes ($(find "$sample/outbox" -name '*.eml' | wc -l) in the sample)"

  sed -i "s|^transport = .*|transport = \"smtp://127.0.0.1:$SMTP_PORT?tls=none\"|" "$site/config.toml"
  "$tidings" --config "$site/config.toml" build > /dev/null 2>&1
  "$tidings" --config "$site/config.toml" subscribers import "$site/people.csv" --confirmed > /dev/null
  # The store with its write-ahead log, if the import left one (SQLite
  # folds it into the file when the last connection closes, which a
  # process on its way out may not wait for): a copy of the file alone
  # could miss the last batch.
  rm -rf "$out/$name-base" && mkdir -p "$out/$name-base"
  cp "$site"/tidings.db* "$out/$name-base/"
  local concurrency
  concurrency=$(awk -F' *= *' '/^concurrency/ { print $2 }' "$site/config.toml")
  smtp-sink -u postfix "127.0.0.1:$SMTP_PORT" 1024 &
  pids+=($!)
  sleep 0.5
  for rep in $(seq "$reps"); do
    rm -f "$site"/tidings.db*
    cp "$out/$name-base"/tidings.db* "$site/"
    measure "$name" tidings "$rep" -- "$tidings" --config "$site/config.toml" digest send
    grep -q "$count sent" "$out/last.out" || { echo "digest send did not send $count:" >&2; cat "$out/last.out" >&2; exit 1; }
    record "$name-rate" tidings "$rep" "$(awk -v n="$count" '{ print n / $1 }' "$out/time")"
    measure "$name" smtp-source "$rep" -- smtp-source -d -s "$concurrency" -m "$count" -l "$size" \
      -f news@bench.example.org -t person@example.org "127.0.0.1:$SMTP_PORT"
    record "$name-rate" smtp-source "$rep" "$(awk -v n="$count" '{ print n / $1 }' "$out/time")"
  done
  kill "${pids[-1]}" 2> /dev/null || true
  wait "${pids[-1]}" 2> /dev/null || true
  rm -rf "$site" "$sample"
}
if wants digest; then
  digest_row digest site "$SUBSCRIBERS"
  digest_row digest-own own "$SUBSCRIBERS"
fi
if wants digest200k; then
  digest_row digest-200k own "$BIG_SUBSCRIBERS"
fi

# --- 4: feed serving ---------------------------------------------------------
if wants serve; then
  echo "4. serving /feeds/atom.xml: wrk, $WRK_CONNECTIONS connections, ${WRK_SECONDS}s"
  [[ -f $corpus/feeds/atom.xml ]] || "${tidings_build[@]}" > /dev/null 2>&1
  sed -i "s|^listen = .*|listen = \"127.0.0.1:$TIDINGS_PORT\"|" "$corpus/config.toml"
  TIDINGS_LOG=warn "$tidings" --config "$corpus/config.toml" run > "$out/run.log" 2>&1 &
  pids+=($!)
  ngx=$out/nginx
  mkdir -p "$ngx"
  cat > "$ngx/nginx.conf" << EOF
daemon off;
worker_processes auto;
pid $ngx/nginx.pid;
error_log $ngx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  types { application/atom+xml xml; }
  client_body_temp_path $ngx;
  proxy_temp_path $ngx;
  fastcgi_temp_path $ngx;
  uwsgi_temp_path $ngx;
  scgi_temp_path $ngx;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location /feeds/ { alias $corpus/feeds/; }
  }
}
EOF
  nginx -c "$ngx/nginx.conf" -p "$ngx" &
  pids+=($!)
  wait_for "http://127.0.0.1:$TIDINGS_PORT/feeds/atom.xml"
  wait_for "http://127.0.0.1:$NGINX_PORT/feeds/atom.xml"
  t_url=http://127.0.0.1:$TIDINGS_PORT/feeds/atom.xml
  n_url=http://127.0.0.1:$NGINX_PORT/feeds/atom.xml
  cmp <(curl -fs "$t_url") <(curl -fs "$n_url") || { echo "tidings and nginx serve different bytes" >&2; exit 1; }
  etag() { curl -fsI "$1" | tr -d '\r' | awk -F': ' 'tolower($1) == "etag" { print $2 }'; }
  t_tag=$(etag "$t_url")
  n_tag=$(etag "$n_url")
  echo "  atom.xml: $(stat -c %s "$corpus/feeds/atom.xml") bytes; ETag tidings $t_tag, nginx $n_tag"
  for tag in "$t_tag" "$n_tag"; do
    url=$t_url
    [[ $tag == "$n_tag" ]] && url=$n_url
    code=$(curl -so /dev/null -w '%{http_code}' -H "If-None-Match: $tag" "$url")
    [[ $code == 304 ]] || { echo "$url answered $code, not 304, to If-None-Match" >&2; exit 1; }
  done
  rps() { wrk -t2 -c"$WRK_CONNECTIONS" -d"${WRK_SECONDS}s" "$@" | awk '/^Requests\/sec/ { print $2 }'; }
  for rep in $(seq "$reps"); do
    record serve tidings "$rep" "$(rps "$t_url")"
    record serve nginx "$rep" "$(rps "$n_url")"
    record serve-304 tidings "$rep" "$(rps -H "If-None-Match: $t_tag" "$t_url")"
    record serve-304 nginx "$rep" "$(rps -H "If-None-Match: $n_tag" "$n_url")"
  done
  cleanup
  pids=()
fi

# --- 5: subscriber import ----------------------------------------------------
if wants import; then
  echo "5. subscriber import: $ROWS rows"
  site=$out/import
  rm -rf "$site" && python3 "$gen" digest "$site" 10 "$DIGEST_THEMES"
  python3 "$gen" people "$site/people.csv" "$ROWS" "$DIGEST_THEMES"
  echo "  $(du -h "$site/people.csv" | cut -f1) of CSV"
  for rep in $(seq "$reps"); do
    rm -f "$site"/tidings.db*
    measure import tidings "$rep" -- "$tidings" --config "$site/config.toml" subscribers import "$site/people.csv" --confirmed
  done
  measure import-again tidings 1 -- "$tidings" --config "$site/config.toml" subscribers import "$site/people.csv" --confirmed
fi

python3 "$repo/bench/table.py" "$results" | tee "$out/results.md"
