#!/usr/bin/env bash
# Where a proxied connection's CPU goes: user and system CPU µs per connection (from
# /proc/PID/stat over a wrk run) and system calls per connection (strace -f -c over a second
# run), for lb4 (handles and net), the bare handle prototype and HAProxy, side by side.
# Workload as bench:e2e http-newconn: wrk -t1 -c50 "Connection: close" against nginx
# (return 200), the proxy on CPU 0, nginx and wrk on CPU 1.
#
# usage: bash bench/e2e/conn-cost.sh [SECONDS] [REPS]   (npm run build first)
# env:   LB4_BENCH_RAW=path/to/c-raw.mjs adds the bare prototype (run with UBUF=1 FASTCLOSE=1)
# needs: nginx, wrk, haproxy, strace, taskset
set -euo pipefail
SECS=${1:-5}
REPS=${2:-2}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$W"' EXIT
for c in nginx wrk haproxy strace taskset; do command -v $c >/dev/null || { echo "conn-cost: $c is not installed" >&2; exit 2; }; done
[ -f "$ROOT/dist/cli/main.js" ] || { echo "conn-cost: run npm run build first" >&2; exit 2; }

port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
UP=$(port)
cat > "$W/ng.conf" <<EOF
worker_processes 1; daemon off; pid $W/ng.pid; error_log $W/ng.err;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:$UP; keepalive_requests 100000; location / { return 200 "ok"; } } }
EOF
taskset -c 1 nginx -c "$W/ng.conf" -p "$W" &
sleep 0.5

lb4_config() { # port admin-port: the config bench:e2e gives lb4 (bench/e2e/targets.ts lb4Config)
  (cd "$ROOT" && node --import tsx -e "import { lb4Config } from './bench/e2e/targets.ts';
    console.log(JSON.stringify({ ...lb4Config({ proto: 'tcp', port: $1, upstreamPort: $UP, stateDir: '$W/state-$1', adminPort: $2 }), workers: 1 }))") > "$W/lb4-$1.json"
  echo "$W/lb4-$1.json"
}
haproxy_config() { # port
  printf 'global\n  nbthread 1\n  maxconn 8000\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 300s\n  timeout server 300s\nlisten l\n  bind 127.0.0.1:%s\n  server s1 127.0.0.1:%s\n' "$1" "$UP" > "$W/hap-$1.cfg"
  echo "$W/hap-$1.cfg"
}

# start NAME PORT: the proxy on CPU 0; sets PX (the process to measure)
start() {
  local name=$1 p=$2
  case $name in
    lb4) taskset -c 0 node --initial-old-space-size=64 "$ROOT/dist/cli/main.js" start --config "$(lb4_config "$p" "$(port)")" > "$W/$name.out" 2>&1 & ;;
    lb4-net) LB4_DATAPLANE=net taskset -c 0 node --initial-old-space-size=64 "$ROOT/dist/cli/main.js" start --config "$(lb4_config "$p" "$(port)")" > "$W/$name.out" 2>&1 & ;;
    raw) UBUF=1 FASTCLOSE=1 taskset -c 0 node "$LB4_BENCH_RAW" "$p" "$UP" > "$W/$name.out" 2>&1 & ;;
    haproxy) taskset -c 0 haproxy -db -f "$(haproxy_config "$p")" > "$W/$name.out" 2>&1 & ;;
  esac
  PX=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.1; done
  taskset -c 1 wrk -t1 -c50 -d1s -H "Connection: close" "http://127.0.0.1:$p/" > /dev/null # warm-up
}
stop() { kill "$PX" 2>/dev/null || true; wait "$PX" 2>/dev/null || true; }
conns() { awk '/requests in/ {print $1}' "$1"; }

TARGETS="lb4 lb4-net haproxy"
[ -n "${LB4_BENCH_RAW:-}" ] && TARGETS="raw $TARGETS"
TCK=$(getconf CLK_TCK)
echo "machine: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg); ${SECS}s runs, $REPS rep(s)"
printf '%-8s %4s %8s %14s %14s %14s\n' target rep conns "user µs/conn" "sys µs/conn" "total µs/conn"
for rep in $(seq "$REPS"); do
  for t in $TARGETS; do
    p=$(port); start "$t" "$p"
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$PX/stat")
    taskset -c 1 wrk -t1 -c50 -d"${SECS}s" -H "Connection: close" "http://127.0.0.1:$p/" > "$W/$t.wrk"
    read -r u2 s2 < <(awk '{print $14, $15}' "/proc/$PX/stat")
    stop
    awk -v n="$(conns "$W/$t.wrk")" -v u=$((u2 - u1)) -v s=$((s2 - s1)) -v k="$TCK" -v t="$t" -v r="$rep" \
      'BEGIN { printf "%-8s %4d %8d %14.1f %14.1f %14.1f\n", t, r, n, u/k*1e6/n, s/k*1e6/n, (u+s)/k*1e6/n }'
  done
done
echo
echo "system calls per connection (strace -f -c; tracing slows the proxy, counts are exact)"
for t in $TARGETS; do
  p=$(port); start "$t" "$p"
  strace -f -c -o "$W/$t.strace" -p "$PX" 2> /dev/null & ST=$!
  sleep 1
  taskset -c 1 wrk -t1 -c50 -d3s -H "Connection: close" "http://127.0.0.1:$p/" > "$W/$t.wrk"
  sleep 0.3
  kill -INT $ST; wait $ST 2>/dev/null || true
  stop
  n=$(conns "$W/$t.wrk")
  total=$(awk -v n="$n" '/total$/ { printf "%.2f", $4 / n }' "$W/$t.strace")
  calls=$(awk -v n="$n" '/^ *[0-9]/ && $NF != "total" && $4 / n >= 0.05 { printf "%s %.2f\n", $NF, $4 / n }' "$W/$t.strace" | sort -k2 -nr | paste -sd, | sed 's/,/, /g')
  printf '%-8s %5s: %s\n' "$t" "$total" "$calls"
done
