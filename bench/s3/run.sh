#!/usr/bin/env bash
# S3 gateway benchmark: Swiftlet's whole cluster (proxy with S3 + 4 storage nodes, 3 replicas)
# against OpenStack Swift 2.30.1's proxy with s3api (the anchor in /work/shared/anchors/swift,
# same shape: 4 nodes, 3 replicas, fsync on for both). Same client for both: wrk replaying
# presigned URLs prepared beforehand (4 KiB and 64 KiB PutObject/GetObject at 16 and 64
# connections; wrk timeout 30 s, so that slow answers count as slow, not as errors), then curl
# for a 1 GiB upload and download. Prints a markdown table.
# Both systems are warmed up first, as a long-running server is (Node compiles hot code as it runs:
# on a fresh Swiftlet cluster, 4 KiB PutObject at 16 connections gave 82, 104, 108, 122, 123, 119
# ops/s in six consecutive 10 s runs): WARMUP seconds (default 40) of PutObject then GetObject at 16
# connections, untimed; then every timed cell follows an untimed warm-up of WARM seconds (default
# 3) of the same requests (PUTs to their own names).
# BENCH_PROCESS_PER_NODE=1 runs each node as one swiftlet-storage-server; BENCH_CONSISTENT_READS=0
# turns the proxy's consistent_reads off (Swift's first-answer reads) for comparison.
#   bench/s3/run.sh [seconds-per-run (default 8)]
set -euo pipefail
. "$(dirname "$0")/../need.sh"
need wrk
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
ANCHOR=/work/shared/anchors/swift
DUR="${1:-8}"
WARM="${WARM:-3}"
WARMUP="${WARMUP:-40}"
WORK="$(mktemp -d /tmp/swiftlet-s3bench.XXXXXX)"
BUCKET="s3bench-$(date +%s)"
CL_PID=""
STARTED_SWIFT=0
SWIFT_EP=http://127.0.0.1:8080

cleanup() {
  if [ -n "$CL_PID" ]; then kill -TERM "$CL_PID" 2>/dev/null || true; wait "$CL_PID" 2>/dev/null || true; fi
  if [ "$STARTED_SWIFT" = 1 ]; then (cd "$ANCHOR" && ./stop.sh >/dev/null 2>&1) || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- Swift (start only if it is not running; stop only what we started) ---
if ! curl -sf "$SWIFT_EP/healthcheck" >/dev/null; then
  (cd "$ANCHOR" && ./setup.sh >/dev/null 2>&1 && ./start.sh main >/dev/null 2>&1)
  STARTED_SWIFT=1
  for _ in $(seq 150); do curl -sf "$SWIFT_EP/healthcheck" >/dev/null && break; sleep 0.2; done
fi

# --- Swiftlet ---
node "$HERE/swiftlet-cluster.mjs" "$WORK/cluster" > "$WORK/cluster.log" 2>&1 &
CL_PID=$!
for _ in $(seq 1200); do [ -f "$WORK/cluster/ready.json" ] && break; kill -0 "$CL_PID" 2>/dev/null || break; sleep 0.1; done
[ -f "$WORK/cluster/ready.json" ] || { echo "swiftlet cluster did not start:" >&2; cat "$WORK/cluster.log" >&2; exit 1; }
field() { node -p "JSON.parse(require('fs').readFileSync('$WORK/cluster/ready.json','utf8')).$1"; }
OURS_EP=$(field endpoint); OURS_KEY=$(field accessKey); OURS_SECRET=$(field secretKey); PROXY_PID=$(field proxyPid)

declare -A EP KEY SECRET
EP[swiftlet]=$OURS_EP; KEY[swiftlet]=$OURS_KEY; SECRET[swiftlet]=$OURS_SECRET
EP[swift]=$SWIFT_EP; KEY[swift]='test:tester'; SECRET[swift]='testing'
REGION=us-east-1

rss_mib() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$PROXY_PID/status"; }
hwm_mib() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$PROXY_PID/status"; }

# Preload GET objects and presign every URL before any timed run.
for who in swiftlet swift; do
  for size in 4096 65536; do
    node "$HERE/setup.mjs" "${EP[$who]}" "${KEY[$who]}" "${SECRET[$who]}" $REGION "$BUCKET" "g$size" 256 $size
    node "$HERE/presign.mjs" "${EP[$who]}" "${KEY[$who]}" "${SECRET[$who]}" $REGION "$BUCKET" GET "g$size" 256 "$WORK/$who-get-$size.urls"
    for conns in 16 64; do
      node "$HERE/presign.mjs" "${EP[$who]}" "${KEY[$who]}" "${SECRET[$who]}" $REGION "$BUCKET" PUT "p$size-$conns" 20000 "$WORK/$who-put-$size-$conns.urls"
      node "$HERE/presign.mjs" "${EP[$who]}" "${KEY[$who]}" "${SECRET[$who]}" $REGION "$BUCKET" PUT "w$size-$conns" 5000 "$WORK/$who-warm-$size-$conns.urls"
    done
  done
  node "$HERE/presign.mjs" "${EP[$who]}" "${KEY[$who]}" "${SECRET[$who]}" $REGION "$BUCKET" PUT big 1 "$WORK/$who-put-big.urls"
  node "$HERE/presign.mjs" "${EP[$who]}" "${KEY[$who]}" "${SECRET[$who]}" $REGION "$BUCKET" GET big 1 "$WORK/$who-get-big.urls"
  node "$HERE/presign.mjs" "${EP[$who]}" "${KEY[$who]}" "${SECRET[$who]}" $REGION "$BUCKET" DELETE big 1 "$WORK/$who-delete-big.urls"
done

# wrk -> "ops/s errors"
run_wrk() { # endpoint urls method size conns
  local out rps errs
  out=$(BENCH_URLS="$2" BENCH_METHOD="$3" BENCH_SIZE="$4" wrk -t1 -c"$5" -d"${DUR}s" --timeout 30s -s "$HERE/urls.lua" "$1" 2>&1)
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx/ {print $5}' <<<"$out"); errs=${errs:-0}
  awk -v r="$rps" -v e="$errs" 'BEGIN {printf "%.0f %s", r, e}'
}

if [ "$WARMUP" != 0 ]; then
  for who in swiftlet swift; do
    node "$HERE/presign.mjs" "${EP[$who]}" "${KEY[$who]}" "${SECRET[$who]}" $REGION "$BUCKET" PUT u4096 8000 "$WORK/$who-warmup.urls"
    DUR=$((WARMUP / 2)) run_wrk "${EP[$who]}" "$WORK/$who-warmup.urls" PUT 4096 16 >/dev/null
    DUR=$((WARMUP / 2)) run_wrk "${EP[$who]}" "$WORK/$who-get-4096.urls" GET 4096 16 >/dev/null
  done
fi

declare -A R
for size in 4096 65536; do
  for conns in 16 64; do
    for op in put get; do
      for who in swiftlet swift; do
        if [ $op = put ]; then urls="$WORK/$who-put-$size-$conns.urls"; else urls="$WORK/$who-get-$size.urls"; fi
        warm=$([ $op = put ] && echo "$WORK/$who-warm-$size-$conns.urls" || echo "$urls")
        [ "$WARM" != 0 ] && DUR=$WARM run_wrk "${EP[$who]}" "$warm" "${op^^}" "$size" "$conns" >/dev/null
        R[$who-$op-$size-$conns]=$(run_wrk "${EP[$who]}" "$urls" "${op^^}" "$size" "$conns")
        if [ $who = swiftlet ]; then R[rss-$op-$size-$conns]=$(rss_mib); fi
      done
    done
  done
done

# 1 GiB: a sparse file of zeros (read at memory speed, so the client is not the bottleneck).
truncate -s 1G "$WORK/big"
HWM_ALL=$(hwm_mib)
# The target is the proxy's memory during the 1 GiB transfers: reset its peak (VmHWM) first.
echo 5 > "/proc/$PROXY_PID/clear_refs"
RSS_BEFORE_BIG=$(rss_mib)
# The download is made DOWNLOADS times (default 3) after a sync (the upload's writeback must not
# compete with it); the table gives their median (see the table below), the note every one.
DOWNLOADS="${DOWNLOADS:-3}"
for who in swiftlet swift; do
  R[$who-bigput]=$(curl -sS -X PUT -T "$WORK/big" -H 'Content-Type: application/octet-stream' -o /dev/null -w '%{http_code} %{speed_upload}' "${EP[$who]}$(head -1 "$WORK/$who-put-big.urls")")
  sync
  R[$who-gets]=""
  for _ in $(seq "$DOWNLOADS"); do
    R[$who-bigget]=$(curl -sS -o /dev/null -w '%{http_code} %{speed_download}' "${EP[$who]}$(head -1 "$WORK/$who-get-big.urls")")
    R[$who-gets]="${R[$who-gets]} $(awk '{printf "%.0f", $2 / 1048576}' <<<"${R[$who-bigget]}")"
  done
  curl -sS -X DELETE -o /dev/null "${EP[$who]}$(head -1 "$WORK/$who-delete-big.urls")" || true
done
HWM=$(hwm_mib)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo "| operation | size | conns | Swiftlet ops/s | Swift ops/s | ratio | errors (Swiftlet/Swift) | Swiftlet proxy RSS MiB |"
echo "|---|---|---|---|---|---|---|---|"
for op in put get; do
  for size in 4096 65536; do
    for conns in 16 64; do
      read -r a ea <<<"${R[swiftlet-$op-$size-$conns]}"
      read -r b eb <<<"${R[swift-$op-$size-$conns]}"
      name=$([ $op = put ] && echo PutObject || echo GetObject)
      echo "| $name | $((size / 1024)) KiB | $conns | $a | $b | $(ratio "$a" "$b") | $ea/$eb | ${R[rss-$op-$size-$conns]} |"
    done
  done
done
echo
echo "| 1 GiB | Swiftlet MiB/s | Swift MiB/s | ratio | status (Swiftlet/Swift) |"
echo "|---|---|---|---|---|"
# The download row is the median of the downloads: both systems drop a body from the page cache
# once it is written and read a random primary, so one download is fast or slow depending on
# whether an earlier one read the same replica; the median is the same measure for both.
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
for op in bigput bigget; do
  read -r sa va <<<"${R[swiftlet-$op]}"
  read -r sb vb <<<"${R[swift-$op]}"
  if [ $op = bigput ]; then
    ma=$(awk -v v="$va" 'BEGIN {printf "%.0f", v / 1048576}'); mb=$(awk -v v="$vb" 'BEGIN {printf "%.0f", v / 1048576}')
  else
    ma=$(median "${R[swiftlet-gets]}"); mb=$(median "${R[swift-gets]}")
  fi
  echo "| $([ $op = bigput ] && echo upload || echo "download (median of $DOWNLOADS)") | $ma | $mb | $(ratio "$ma" "$mb") | $sa/$sb |"
done
echo
echo "Swiftlet proxy peak RSS (VmHWM): ${HWM_ALL} MiB over the small-object cells; ${HWM} MiB during the 1 GiB transfers (${RSS_BEFORE_BIG} MiB when they started)"
echo "1 GiB downloads in turn (MiB/s): Swiftlet${R[swiftlet-gets]}; Swift${R[swift-gets]} (the table gives their median)"
