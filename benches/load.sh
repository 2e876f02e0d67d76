#!/usr/bin/env bash
# Serving under load, measured against the floor. Run by hand (not in CI):
#
#   bash benches/load.sh            # needs h2load: apt-get install nghttp2-client
#   PROFILE=/tmp/load.perf bash benches/load.sh   # also a perf profile of the service
#
# Starts the release binary on a large generated state (PROJECTS × WEEKS
# weekly aggregates, served from a snapshot at once) with a fake Jira of
# the same projects on loopback, and drives it with h2load:
#   1. grpc.health.v1.Health/Check          — the floor
#   2. GetMetrics, 13 weeks × 1 project
#   3. GetMetrics, 52 weeks × 10 projects
#   4. 2 and 3 again while a full refresh of every project runs.
# h2load counts gRPC errors as successes, so every run is also checked for
# real answers: HTTP 200 for every request and at least MIN_BYTES of
# response data per request (a gRPC error answers with headers only).
# Prints throughput, p50/p99 latency and the ratios to the floor
# (targets: ≥ 0.7 for 13 × 1, ≥ 0.5 for 52 × 10).
set -euo pipefail
cd "$(dirname "$0")/.."

PROJECTS=${PROJECTS:-200}
WEEKS=${WEEKS:-260}
ISSUES=${ISSUES:-1000}         # per project, in the fake Jira
REQUESTS=${REQUESTS:-20000}
CLIENTS=${CLIENTS:-4}
STREAMS=${STREAMS:-16}

command -v h2load >/dev/null || { echo "h2load is missing: apt-get install nghttp2-client" >&2; exit 1; }
cargo build --release --bin jira-dora --example load_fixture --example fake_jira

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

target/release/examples/load_fixture "$work" "$PROJECTS" "$WEEKS"
target/release/examples/fake_jira "$PROJECTS" "$ISSUES" > "$work/jira.url" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/jira.url" ] && break; sleep 0.1; done

cat > "$work/config.toml" <<TOML
[harvest]
on_start = false
interval_minutes = 0
[snapshot]
interval_ms = 0
[definitions]
watch_interval_ms = 0
TOML
# PROFILE=FILE records a CPU profile of the service with perf.
profiler=()
[ -n "${PROFILE:-}" ] && profiler=(perf record -F 499 -g -o "$PROFILE" --)
DORA_DATA_DIR="$work/data" DORA_PROJECTS="$(cat "$work/projects.txt")" JIRA_BASE_URL="$(head -1 "$work/jira.url")" \
  DORA_LISTEN=127.0.0.1:0 DORA_LOG=warn "${profiler[@]}" target/release/jira-dora --config "$work/config.toml" serve \
  > "$work/service.out" 2> "$work/service.err" &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$work/service.out" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$work/service.out" | head -1)
[ -n "$addr" ] || { echo "the service did not start:" >&2; cat "$work/service.err" >&2; exit 1; }

declare -A rate
printf '\n%-34s %10s %9s %9s %11s\n' "run" "req/s" "p50 ms" "p99 ms" "bytes/resp"
run() { # name path body min_bytes
  local name=$1 path=$2 body=$3 min=$4 out="$work/$1.txt" log="$work/$1.log"
  h2load -n "$REQUESTS" -c "$CLIENTS" -m "$STREAMS" -H 'content-type: application/grpc' -H 'te: trailers' \
    -d "$work/$body" --log-file="$log" "http://$addr$path" > "$out"
  python3 - "$name" "$out" "$log" "$REQUESTS" "$min" <<'PY'
import re, sys
name, out, log, n, min_bytes = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", out)
ok2xx = int(re.search(r"status codes: (\d+) 2xx", out).group(1))
data = re.search(r"traffic: .*?\((\d+)\) data", out)
data_bytes = int(data.group(1)) if data else 0
lat = sorted(int(l.split()[2]) for l in open(log) if l.strip())
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] / 1000
per = data_bytes / max(1, ok2xx)
errors = []
if int(done.group(2)) != n or int(done.group(3)) or int(done.group(4)): errors.append("failed requests")
if ok2xx != n: errors.append(f"{n - ok2xx} non-2xx answers")
if per < min_bytes: errors.append(f"{per:.0f} bytes per answer < {min_bytes}: gRPC errors?")
print(f"{name:<34} {rps:>10.0f} {p(0.5):>9.2f} {p(0.99):>9.2f} {per:>11.0f}" + (("  ERRORS: " + "; ".join(errors)) if errors else ""))
open(sys.argv[3] + ".rate", "w").write(str(rps))
sys.exit(1 if errors else 0)
PY
  rate[$name]=$(cat "$log.rate")
}

M=/dora.v1.DoraMetrics/GetMetrics
run health /grpc.health.v1.Health/Check health.bin 7
run "13w x 1 project" $M metrics-13x1.bin 500
run "52w x 10 projects" $M metrics-52x10.bin 500
target/release/jira-dora refresh --full --addr "http://$addr" > "$work/job"
run "13w x 1, full refresh running" $M metrics-13x1.bin 500
run "52w x 10, full refresh running" $M metrics-52x10.bin 500
job=$(cat "$work/job")
# Was the refresh still running when the measurements ended?
job_state=$(python3 -c 'import json,sys,urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1]))["job"]["state"])' \
  "http://$addr/v1/refresh/$job")
python3 - "${rate[health]}" "${rate[13w x 1 project]}" "${rate[52w x 10 projects]}" \
  "${rate[13w x 1, full refresh running]}" "${rate[52w x 10, full refresh running]}" <<'PY'
import sys
floor, a, b, ra, rb = map(float, sys.argv[1:])
print()
print(f"13w x 1 / floor:                  {a / floor:.2f}  (target >= 0.7) {'met' if a / floor >= 0.7 else 'NOT met'}")
print(f"52w x 10 / floor:                 {b / floor:.2f}  (target >= 0.5) {'met' if b / floor >= 0.5 else 'NOT met'}")
print(f"13w x 1 / floor, refresh running: {ra / floor:.2f}")
print(f"52w x 10 / floor, refresh running: {rb / floor:.2f}")
PY
echo "refresh job $job was $job_state after the measurements; load average $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
