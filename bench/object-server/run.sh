#!/usr/bin/env bash
# Object server benchmark: the same backend requests against Swiftlet's object server and
# OpenStack Swift's (2.30.1, the anchor in /work/shared/anchors/swift, object server 1 on
# 127.0.0.1:6210, device `objbench`, which is in no ring so no replicator touches it).
# 4 KiB and 64 KiB PUT and GET at 16 and 64 connections (wrk + Lua), one 1 GiB PUT and GET,
# fsync on for both (both servers' defaults). Swiftlet runs with the environment of its systemd unit
# (UV_THREADPOOL_SIZE=32, NODE_OPTIONS=--max-semi-space-size=4, MALLOC_TRIM_THRESHOLD_=33554432, MALLOC_MMAP_THRESHOLD_=4194304)
# and its bin's node flags (its #! line). Prints a markdown table; bounded to a few minutes.
# Both run one worker process per core (Swift's default `workers = auto`; ours is set to auto here).
# Every timed cell follows an untimed warm-up of WARM seconds (default 3) of the same requests
# against the same server, as a long-running server is warm (Node compiles hot code as it runs).
#   bench/object-server/run.sh [seconds-per-run (default 8)]
set -euo pipefail
. "$(dirname "$0")/../need.sh"
need wrk
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
ANCHOR=/work/shared/anchors/swift
DUR="${1:-8}"
WARM="${WARM:-3}"
SWIFT_PORT=6210
SWIFT_DEV_DIR=/tmp/anchor-swift/srv/1/node/objbench
WORK="$(mktemp -d /tmp/swiftlet-objbench.XXXXXX)"
PORT=16299
OURS_PID=""
STARTED_SWIFT=0

cleanup() {
  if [ -n "$OURS_PID" ]; then kill -TERM "$OURS_PID" 2>/dev/null || true; wait "$OURS_PID" 2>/dev/null || true; fi
  if [ "$STARTED_SWIFT" = 1 ]; then (cd "$ANCHOR" && ./stop.sh >/dev/null 2>&1) || true; fi
  rm -rf "$WORK" "$SWIFT_DEV_DIR"/objects* "$SWIFT_DEV_DIR"/tmp "$SWIFT_DEV_DIR"/async_pending* 2>/dev/null || true
}
trap cleanup EXIT

# --- Swift (start only if it is not running; stop only what we started) ---
if ! curl -sf "http://127.0.0.1:$SWIFT_PORT/healthcheck" >/dev/null; then
  (cd "$ANCHOR" && ./setup.sh >/dev/null 2>&1 && ./start.sh main >/dev/null 2>&1)
  STARTED_SWIFT=1
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$SWIFT_PORT/healthcheck" >/dev/null && break; sleep 0.2; done
fi
# Swift's replicators/updaters are stopped for the run only if we started Swift ourselves (someone
# else's running cluster is left exactly as it is).
if [ "$STARTED_SWIFT" = 1 ]; then (cd "$ANCHOR" && ./stop.sh bg >/dev/null 2>&1) || true; fi

# --- Swiftlet ---
mkdir -p "$WORK/srv/objbench" "$WORK/etc"
cp "$ROOT/etc/swift.conf" "$WORK/etc/"
cat > "$WORK/object-server.conf" <<CONF
[DEFAULT]
devices = $WORK/srv
mount_check = false
bind_ip = 127.0.0.1
bind_port = $PORT
swift_dir = $WORK/etc
workers = ${OURS_WORKERS:-auto}
CONF
UV_THREADPOOL_SIZE=32 NODE_OPTIONS=--max-semi-space-size=4 MALLOC_TRIM_THRESHOLD_=33554432 MALLOC_MMAP_THRESHOLD_=4194304 "$ROOT/packages/object-server/bin/swiftlet-object-server.js" "$WORK/object-server.conf" > "$WORK/object-server.log" 2>&1 &
OURS_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthcheck" >/dev/null && break; sleep 0.1; done

# CPU seconds (user+system) used so far by a set of processes: a load-independent cost per op.
cpu_s() { local t=0; for p in "$@"; do [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; awk -v t="$t" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t/hz}'; }
swift_pids() { pgrep -f "object-server/1.conf" | tr '\n' ' '; }
# Our processes: the primary and its workers (node:cluster). Memory is per process, the largest shown.
ours_pids() { echo "$OURS_PID $(pgrep -P "$OURS_PID" | tr '\n' ' ')"; }
max_status() { local m=0 v; for p in $(ours_pids); do v=$(awk -v k="$1:" '$1 == k {printf "%.0f", $2/1024}' "/proc/$p/status" 2>/dev/null); [ -n "$v" ] && [ "$v" -gt "$m" ] && m=$v; done; echo "$m"; }
rss_mib() { max_status VmRSS; }
hwm_mib() { max_status VmHWM; }

# wrk -> "ops/s MiB/s errors"
run_wrk() { # port script conns size prefix
  local out
  out=$(BENCH_SIZE="$4" BENCH_PREFIX="$5" BENCH_COUNT=256 BENCH_DEVICE=objbench \
    wrk -t1 -c"$3" -d"${DUR}s" --timeout 10s -s "$HERE/$2" "http://127.0.0.1:$1" 2>&1)
  local rps errs
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx/ {print $5}' <<<"$out"); errs=${errs:-0}
  local sock; sock=$(awk '/Socket errors/ {print $0}' <<<"$out")
  awk -v r="$rps" -v s="$4" -v e="$errs" 'BEGIN {printf "%.0f %.1f %s", r, r*s/1048576, e}'
  [ -n "$sock" ] && echo " ($sock)" >&2 || true
}

declare -A R
for size in 4096 65536; do
  for who in swiftlet swift; do
    port=$([ $who = swift ] && echo $SWIFT_PORT || echo $PORT)
    node "$HERE/load.mjs" preload "$port" objbench "g$size" 256 "$size"
  done
  for conns in 16 64; do
    for op in put get; do
      for who in swiftlet swift; do
        port=$([ $who = swift ] && echo $SWIFT_PORT || echo $PORT)
        pids=$([ $who = swift ] && swift_pids || ours_pids)
        [ "$WARM" != 0 ] && DUR=$WARM run_wrk "$port" "$op.lua" "$conns" "$size" "$([ $op = get ] && echo "g$size" || echo "w$size-$conns")" >/dev/null
        c0=$(cpu_s $pids)
        R[$who-$op-$size-$conns]=$(run_wrk "$port" "$op.lua" "$conns" "$size" "$([ $op = get ] && echo "g$size" || echo "p$size-$conns")")
        R[cpu-$who-$op-$size-$conns]=$(awk -v a="$c0" -v b="$(cpu_s $pids)" 'BEGIN {printf "%.2f", b - a}')
        [ $who = swiftlet ] && R[rss-$op-$size-$conns]=$(rss_mib)
      done
    done
  done
done

# --- 1 GiB, and what the disk and MD5 allow ---
GIB=$((1024*1024*1024))
BIG_OURS=$(node "$HERE/load.mjs" big $PORT objbench big-ours $GIB)
RSS_BIG=$(rss_mib)
BIG_SWIFT=$(node "$HERE/load.mjs" big $SWIFT_PORT objbench big-swift $GIB)
# Random bytes, not zeros: this VM's disk reads back never-written or zero blocks far faster than
# data (a dropped file of zeros read at 6.3 GB/s, one of random bytes at 0.7 GB/s).
dd if=/dev/urandom of="$WORK/src.bin" bs=1M count=1024 2>/dev/null
DD_W=$(dd if="$WORK/src.bin" of="$WORK/dd.bin" bs=1M conv=fdatasync 2>&1 | awk '/copied/ {print $(NF-1), $NF}')
DD_R=$(dd if="$WORK/dd.bin" of=/dev/null bs=1M 2>&1 | awk '/copied/ {print $(NF-1), $NF}')
rm -f "$WORK/dd.bin"
# Both servers drop a large body from the page cache once it is durable (Swift's drop_buffer_cache,
# our keep_cache_size), so their 1 GiB GET reads from the disk: the bound for it is the first read
# of a file just written and dropped the same way (dd's nocache flags use the same posix_fadvise).
# (oflag=nocache alone leaves the file cached: its pages are still dirty when dd drops them; a
# count=0 read with iflag=nocache drops the whole file once it is synced.)
dd if="$WORK/src.bin" of="$WORK/dd.bin" bs=1M conv=fdatasync 2>/dev/null
rm -f "$WORK/src.bin"
dd if="$WORK/dd.bin" iflag=nocache count=0 2>/dev/null
DD_RU=$(dd if="$WORK/dd.bin" of=/dev/null bs=512K iflag=nocache 2>&1 | awk '/copied/ {print $(NF-1), $NF}')
rm -f "$WORK/dd.bin"
# The same first read, of a file our server wrote: another 1 GiB PUT, then dd reads its .data right
# away, as the GET above read its object right after its PUT. (A file the server wrote reads back
# far slower on this VM than one dd wrote: 1.2 against 5-6 GB/s when tried by hand.)
node "$HERE/load.mjs" bigput $PORT objbench bound-ours $GIB >/dev/null
SERVER_FILE=$(find "$WORK/srv/objbench" -name '*.data' -size +1000000k -newer "$WORK/object-server.conf" -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
dd if="$SERVER_FILE" iflag=nocache count=0 2>/dev/null
DD_RS=$(dd if="$SERVER_FILE" of=/dev/null bs=512K iflag=nocache 2>&1 | awk '/copied/ {print $(NF-1), $NF}')
MD5=$(openssl speed -seconds 2 -bytes 1048576 -evp md5 2>/dev/null | awk '/^md5/ {print $NF}')
HWM=$(hwm_mib)
ANON=0; for p in $(ours_pids); do a=$(awk '/^Anonymous/ {printf "%.0f", $2/1024}' "/proc/$p/smaps_rollup"); [ "$a" -gt "$ANON" ] && ANON=$a; done


{
  echo "| op | size | conns | Swiftlet ops/s | Swift ops/s | ratio | Swiftlet MiB/s | Swift MiB/s | server CPU ms/op (ours / Swift) | Swiftlet RSS MiB | non-2xx (ours/Swift) |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  for size in 4096 65536; do for op in put get; do for conns in 16 64; do
    read -r o_ops o_mib o_err <<<"${R[swiftlet-$op-$size-$conns]}"
    read -r s_ops s_mib s_err <<<"${R[swift-$op-$size-$conns]}"
    ratio=$(awk -v a="$o_ops" -v b="$s_ops" 'BEGIN { if (b > 0) printf "%.2f×", a/b; else print "n/a" }')
    cpu=$(awk -v oc="${R[cpu-swiftlet-$op-$size-$conns]}" -v sc="${R[cpu-swift-$op-$size-$conns]}" -v o="$o_ops" -v s="$s_ops" -v d="$DUR" \
      'BEGIN { printf "%.2f / %.2f", (o > 0 ? 1000*oc/(o*d) : 0), (s > 0 ? 1000*sc/(s*d) : 0) }')
    echo "| ${op^^} | $((size/1024)) KiB | $conns | $o_ops | $s_ops | $ratio | $o_mib | $s_mib | $cpu | ${R[rss-$op-$size-$conns]} | $o_err/$s_err |"
  done; done; done
  node -e '
    const [o, s] = [JSON.parse(process.argv[1]), JSON.parse(process.argv[2])];
    const mib = (r) => (r.bytes / 1048576);
    const f = (x) => x.toFixed(0);
    console.log(`| PUT | 1 GiB | 1 | ${o.putS.toFixed(2)} s | ${s.putS.toFixed(2)} s | ${(s.putS / o.putS).toFixed(2)}× | ${f(mib(o) / o.putS)} | ${f(mib(s) / s.putS)} | n/a | ${process.argv[3]} | 0/0 |`);
    console.log(`| GET | 1 GiB | 1 | ${o.getS.toFixed(2)} s | ${s.getS.toFixed(2)} s | ${(s.getS / o.getS).toFixed(2)}× | ${f(mib(o) / o.getS)} | ${f(mib(s) / s.getS)} | n/a | ${process.argv[3]} | 0/0 |`);
  ' "$BIG_OURS" "$BIG_SWIFT" "$RSS_BIG"
  echo
  echo "Bounds on this machine: dd write 1 GiB + fdatasync: $DD_W; dd read (page cache): $DD_R; dd read of a file just written and dropped from the page cache: $DD_RU; dd read of a 1 GiB .data our server had just written: $DD_RS; openssl md5 (1 MiB blocks): $MD5 (k bytes/s). Our server: $(($(ours_pids | wc -w))) processes (primary + workers). Peak RSS of the largest over the whole run (VmHWM): ${HWM} MiB; at the end ${ANON} MiB of it anonymous (the rest is mostly the node binary's pages, shared with every Node process)."
}
