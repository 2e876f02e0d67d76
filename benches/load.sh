#!/usr/bin/env bash
# Serving under load, measured against the floor. Run by hand (not in CI):
#
#   bash benches/load.sh            # needs h2load: apt-get install nghttp2-client
#   PROFILE=load.perf bash benches/load.sh   # also flat perf profiles of the services
#   REPEATS=5 SECONDS_PER_RUN=4 bash benches/load.sh   # longer: steadier ratios
#
# Starts the release binary twice on realistic data — the demo site's shape
# scaled to PROJECTS projects of ISSUES issues (a year of work each),
# classified with the shipped definitions and served from a snapshot at
# once, the AI rollout date configured for every project — once as
# configured by default and once with the answer caches off (every answer
# computed), with a fake Jira of the same site on loopback for the refresh
# runs. Drives both with h2load, each run (SECONDS_PER_RUN after half a
# second of warm-up) right after a floor run (grpc.health.v1.Health/Check),
# REPEATS times; a ratio is the median of the pairs':
#   1. GetMetrics, 13 weeks × 1 project
#   2. GetMetrics, 52 weeks × 10 projects
#   3. GetMetrics, 52 weeks × 10 projects with the weekly series, and the
#      same for a client that accepts gzip (grpc-accept-encoding)
#   4. 1 and 2 for one team (teams by component, one of five) instead of
#      the whole projects, to compare serving a team with serving a project
#   5. 1 and 2 again while a full refresh of every project runs (once)
#   6. a static file of the dashboard over the same port: what moving the
#      series' bytes costs without computing anything;
#   7. when nghttpd is installed (apt-get install nghttp2-server), the
#      series' answer, byte for byte, from nghttpd — nghttp2's own HTTP/2
#      server in C, reading it from a file — with the same client
#      settings: what the fastest server at hand reaches for those bytes.
# h2load counts gRPC errors as successes, so every run is also checked for
# real answers: HTTP 200 for every request (but those in flight when a run
# stops) and at least 500 bytes of response data per GetMetrics (a gRPC
# error answers with headers only).
# Prints throughput, p50/p99 latency and the ratios to the floor
# (targets: ≥ 0.8 for 13 × 1, ≥ 0.5 for 52 × 10, ≥ 0.3 with the series),
# the series' bytes per second against a static file's,
# a team's throughput over its project's (target: ≥ 0.9, a team costs no
# more than a project), and the answer cache's hit ratio from /metrics.
set -euo pipefail
cd "$(dirname "$0")/.."

PROJECTS=${PROJECTS:-200}
ISSUES=${ISSUES:-1000}         # per project
SECONDS_PER_RUN=${SECONDS_PER_RUN:-2}  # each run, after half a second of warm-up
REPEATS=${REPEATS:-3}
CLIENTS=${CLIENTS:-4}
STREAMS=${STREAMS:-16}

command -v h2load >/dev/null || { echo "h2load is missing: apt-get install nghttp2-client" >&2; exit 1; }
cargo build --release --bin jira-dora --example load_fixture --example fake_jira

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

target/release/examples/load_fixture "$work" "$PROJECTS" "$ISSUES"
target/release/examples/fake_jira "$PROJECTS" "$ISSUES" > "$work/jira.url" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/jira.url" ] && break; sleep 0.1; done

# Two services on the same data: one as configured by default, one with
# the answer caches off (every answer computed), measured side by side.
config() { # answers_mib
  cat <<TOML
report_tz = "Europe/Berlin"
[ai]
rollout_date = "$(cat "$work/rollout.txt")"
[harvest]
on_start = false
interval_minutes = 0
[snapshot]
interval_ms = 0
[definitions]
watch_interval_ms = 0
[metrics]
enabled = true
[cache]
answers_mib = $1
TOML
}
declare -A addrs
start() { # name answers_mib
  local name=$1 dir="$work/$1"
  mkdir -p "$dir" && cp -r "$work/data" "$dir/data" && config "$2" > "$dir/config.toml"
  # PROFILE=PREFIX records a CPU profile of each service with perf, in PREFIX.NAME.
  local profiler=()
  [ -n "${PROFILE:-}" ] && profiler=(perf record -F 499 -o "$PROFILE.$name" --)
  DORA_DATA_DIR="$dir/data" DORA_DEFS_DIR="$work/defs" DORA_PROJECTS="$(cat "$work/projects.txt")" JIRA_BASE_URL="$(head -1 "$work/jira.url")" \
    DORA_LISTEN=127.0.0.1:0 DORA_LOG=warn "${profiler[@]}" target/release/jira-dora --config "$dir/config.toml" serve \
    > "$dir/service.out" 2> "$dir/service.err" &
  pids+=($!)
  for _ in $(seq 100); do grep -q "listening on" "$dir/service.out" 2>/dev/null && break; sleep 0.1; done
  addrs[$name]=$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$dir/service.out" | head -1)
  [ -n "${addrs[$name]}" ] || { echo "the service did not start:" >&2; cat "$dir/service.err" >&2; exit 1; }
}
start cached 16
start uncached 0

declare -A rate p50 p99 per
run() { # name service path body min_bytes [header]: one run of SECONDS_PER_RUN after a warm-up
  local name=$1 addr=${addrs[$2]} path=$3 body=$4 min=$5 out="$work/run.txt" log="$work/run.log"
  local request=(-H 'content-type: application/grpc' -H 'te: trailers' -d "$work/$body")
  [ -n "$body" ] || request=()  # a plain GET
  [ -z "${6:-}" ] || request+=(-H "$6")
  rm -f "$log"
  h2load -D "$SECONDS_PER_RUN" --warm-up-time=500ms -c "$CLIENTS" -m "$STREAMS" "${request[@]}" \
    --log-file="$log" "http://$addr$path" > "$out"
  local figures
  figures=$(python3 - "$out" "$log" "$min" "$((CLIENTS * STREAMS))" <<'PY'
import re, sys
out, log, min_bytes, in_flight = open(sys.argv[1]).read(), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", out)
n, failed = int(done.group(1)), int(done.group(3)) + int(done.group(4))
ok2xx = int(re.search(r"status codes: (\d+) 2xx", out).group(1))
# The "data" figure counts the warm-up too; total and headers do not.
traffic = re.search(r"traffic: .*?\((\d+)\) total, .*?\((\d+)\) headers", out)
data_bytes = int(traffic.group(1)) - int(traffic.group(2)) if traffic else 0
lat = sorted(int(l.split()[2]) for l in open(log) if l.strip())
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] / 1000
per = data_bytes / max(1, ok2xx)
# The requests still in flight when the run stops may end without an answer.
errors = []
if failed > in_flight: errors.append(f"{failed} failed requests")
if n - ok2xx > in_flight: errors.append(f"{n - ok2xx} non-2xx answers")
if per < min_bytes: errors.append(f"{per:.0f} bytes per answer < {min_bytes}: gRPC errors?")
print(f"{rps:.0f} {p(0.5):.2f} {p(0.99):.2f} {per:.0f}" + (" ERRORS: " + "; ".join(errors) if errors else ""))
PY
)
  local f
  read -ra f <<< "$figures"
  rate[$name]=${f[0]} p50[$name]=${f[1]} p99[$name]=${f[2]} per[$name]=${f[3]}
  if [[ $figures == *ERRORS* ]]; then echo "$name: ${figures#*ERRORS: }" >&2; exit 1; fi
}

M=/dora.v1.DoraMetrics/GetMetrics
# Each GetMetrics run follows its own floor run (on a shared machine the
# floor moves with the other load, and neighbours in time compare best),
# REPEATS times; the ratio is the median of the pairs' ratios.
declare -A ratios
printf '\n%-34s %10s %10s %6s %8s %8s %11s\n' "run" "floor req/s" "req/s" "ratio" "p50 ms" "p99 ms" "bytes/resp"
measure() { # name service body [header]; AT=path instead of GetMetrics
  local name=$1 list=()
  for _ in $(seq "$REPEATS"); do
    run floor cached /grpc.health.v1.Health/Check health.bin 7
    run "$name" "$2" "${AT:-$M}" "$3" 500 "${4:-}"
    local r
    r=$(python3 -c 'import sys; print(f"{float(sys.argv[1]) / float(sys.argv[2]):.3f}")' "${rate[$name]}" "${rate[floor]}")
    list+=("$r")
    printf '%-34s %10s %10s %6.2f %8s %8s %11s\n' "$name" "${rate[floor]}" "${rate[$name]}" "$r" "${p50[$name]}" "${p99[$name]}" "${per[$name]}"
  done
  ratios[$name]=$(printf '%s\n' "${list[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}')
}
for svc in uncached cached; do
  measure "13w x 1 project, $svc" $svc metrics-13x1.bin
  measure "52w x 10 projects, $svc" $svc metrics-52x10.bin
  measure "52w x 10 + series, $svc" $svc metrics-52x10-series.bin
  measure "52w x 10 + series, gzip, $svc" $svc metrics-52x10-series.bin 'grpc-accept-encoding: gzip'
  measure "13w x 1 team, $svc" $svc metrics-13x1-team.bin
  measure "52w x 10 team, $svc" $svc metrics-52x10-team.bin
done
# What moving the series' bytes alone costs: a static file of the
# dashboard, sent as it is, in bytes per second against the series'.
run "static file" cached /app.js "" 1000
static_bytes=$(python3 -c 'import sys; print(f"{float(sys.argv[1]) * float(sys.argv[2]):.0f}")' "${rate[static file]}" "${per[static file]}")
# The same bytes from another server (7).
if command -v nghttpd >/dev/null; then
  mkdir -p "$work/www"
  nghttp -d "$work/metrics-52x10-series.bin" -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://${addrs[cached]}$M" > "$work/www/series"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  nghttpd --no-tls -d "$work/www" "$port" > /dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  addrs[nghttpd]=127.0.0.1:$port
  AT=/series measure "52w x 10 + series, nghttpd" nghttpd metrics-52x10-series.bin
fi
addr=${addrs[cached]}
target/release/jira-dora refresh --full --addr "http://$addr" > "$work/job"
REPEATS=1 measure "13w x 1, refresh running, cached" cached metrics-13x1.bin
REPEATS=1 measure "52w x 10, refresh running, cached" cached metrics-52x10.bin
job=$(cat "$work/job")
# Was the refresh still running when the measurements ended?
job_state=$(python3 -c 'import json,sys,urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1]))["job"]["state"])' \
  "http://$addr/v1/refresh/$job")
hits=$(python3 -c 'import sys,urllib.request; print(" ".join(l.split("{")[1].replace("}", "=").replace(" ", "") for l in urllib.request.urlopen(sys.argv[1]).read().decode().splitlines() if l.startswith("dora_answer_cache_hit_ratio")))' \
  "http://$addr/metrics")
ratio() { printf '%.2f' "${ratios[$1]}"; }
verdict() { python3 -c 'import sys; r, t = map(float, sys.argv[1:]); print(f"(target >= {t:g}) " + ("met" if r >= t else "NOT met"))' "$1" "$2"; }
echo
printf '%-28s %12s   %s\n' "ratio to the floor" "caches off" "as configured (answer cache on)"
for row in "13w x 1 project:0.8" "52w x 10 projects:0.5" "52w x 10 + series:0.3" "52w x 10 + series, gzip:0.3"; do
  name=${row%:*} target=${row#*:}
  on=$(ratio "$name, cached")
  printf '%-28s %12s   %s %s\n' "$name" "$(ratio "$name, uncached")" "$on" "$(verdict "$on" "$target")"
done
# A team against its projects: each relative to its own floor runs.
team_ratio() { python3 -c 'import sys; t, p = map(float, sys.argv[1:]); print(f"{t / p:.2f}")' "${ratios[$1]}" "${ratios[$2]}"; }
for row in "13w x 1:13w x 1 project" "52w x 10:52w x 10 projects"; do
  team=${row%%:*} project=${row#*:}
  on=$(team_ratio "$team team, cached" "$project, cached")
  printf '%-28s %12s   %s %s\n' "$team team / project" "$(team_ratio "$team team, uncached" "$project, uncached")" "$on" "$(verdict "$on" 0.9)"
done
if [ -n "${ratios[52w x 10 + series, nghttpd]:-}" ]; then
  printf '%-28s %12s   %s (the same bytes from nghttpd; the service reaches %.2f of it)\n' "52w x 10 + series, nghttpd" "" \
    "$(ratio "52w x 10 + series, nghttpd")" "$(python3 -c 'import sys; print(float(sys.argv[1]) / float(sys.argv[2]))' \
    "${ratios[52w x 10 + series, cached]}" "${ratios[52w x 10 + series, nghttpd]}")"
fi
printf '%-28s %12s   %s\n' "13w x 1, refresh running" "" "$(ratio "13w x 1, refresh running, cached")"
printf '%-28s %12s   %s\n' "52w x 10, refresh running" "" "$(ratio "52w x 10, refresh running, cached")"
python3 - "${rate[52w x 10 + series, cached]}" "${per[52w x 10 + series, cached]}" "$static_bytes" "${per[static file]}" <<'PY'
import sys
rate, size, static, static_size = map(float, sys.argv[1:])
print(f"52w x 10 + series, cached (its last run): {rate * size / 1e9:.2f} GB/s of answers; a static file of {static_size / 1000:.0f} kB "
      f"(the dashboard's script) on the same port: {static / 1e9:.2f} GB/s (series / static file: {rate * size / static:.2f})")
PY
echo "answer cache hit ratio (/metrics): $hits"
echo "refresh job $job was $job_state after the measurements; load average $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
