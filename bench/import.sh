#!/usr/bin/env bash
# Subscriber import at scale: generates a CSV of N rows (default 1,000,000)
# with random theme choices, imports it into a fresh copy of the sample
# site, imports it again (every row already known), and reports wall time
# and peak memory of each run. A report, never a pass/fail: these machines
# are shared and noisy.
#
#   bench/import.sh [ROWS]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
out=bench/out/import
rm -rf "$out" && mkdir -p "$out/site"
cargo build --release --locked --quiet
cp config.toml "$out/site/" && cp -r content "$out/site/"
python3 - "$rows" "$out/people.csv" <<'PY'
import random, sys
rows, path = int(sys.argv[1]), sys.argv[2]
random.seed(7)
themes = ["agenda-2030", "miljo-och-klimat", "jamstalldhet", "barn-och-unga", "inkludering",
          "halsa", "lokal-demokrati", "migration", "stadsplanering", "ledarskap"]
with open(path, "w") as f:
    f.write("email,themes,language,digest\n")
    for i in range(rows):
        chosen = ";".join(random.sample(themes, random.randint(1, 4)))
        f.write(f"person{i}@example{i % 97}.org,{chosen},{random.choice(['sv', 'en'])},monthly\n")
PY
run() {
  /usr/bin/time -f "%e %M" -o "$out/time" ./target/release/tidings --config "$out/site/config.toml" \
    subscribers import "$out/people.csv" --confirmed > "$out/stdout" 2> "$out/stderr"
  read -r secs kib < "$out/time"
  printf '%-28s %8.1f s %8.1f MB   %s\n' "$1" "$secs" "$(awk -v k="$kib" 'BEGIN { print k / 1024 }')" "$(cat "$out/stdout")"
}
echo "subscriber import, $rows rows ($(du -h "$out/people.csv" | cut -f1)), $(nproc) cores"
run "first import"
run "same file again"
