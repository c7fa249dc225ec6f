#!/bin/bash
# Replication benchmark, Swift side (Swift 2.30.1 SAIO anchor, storage policy 1, rsync transport).
# Needs the anchor's servers running (start.sh main) and swift_populate.py run first.
#   (a) time until d1 holds all N objects again: passes of the object replicators of nodes 2..4
#       (`swift-object-replicator CONF once -i 1`, in parallel, as on separate nodes); A_RUNS
#       times (default 3), d1 wiped again before each, the median reported
#   (b) after d1's own settling pass, one pass of all four nodes at once over the in-sync cluster
#       (B_RUNS times, default 3; the median is reported)
# Prints one JSON line. usage: swift.sh N
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
N=${1:-10000}
A=/tmp/anchor-swift
ETC=$A/etc
# SWIFT_CONCURRENCY=n: Swift's replicators with `concurrency = n` (its default is 1), from copies
# of the anchor's object server configs.
if [ -n "${SWIFT_CONCURRENCY:-}" ]; then
  CONFS=$(mktemp -d /tmp/swift-replconf.XXXXXX)
  mkdir -p "$CONFS/object-server"
  for f in "$ETC"/object-server/*.conf; do
    sed "/^\[object-replicator\]/a concurrency = $SWIFT_CONCURRENCY" "$f" > "$CONFS/object-server/$(basename "$f")"
  done
  ETC=$CONFS
fi
OUT=$(mktemp -d /tmp/swift-replbench.XXXXXX)
count() { find $A/srv/1/node/d1/objects-1 -name '*.data' 2>/dev/null | wc -l; }
bytes() { find $A/srv/1/node/d1/objects-1 -name '*.data' -printf '%s\n' 2>/dev/null | awk '{s+=$1} END {print s+0}'; }
now() { date +%s.%N; }
median_of() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
run_nodes() { # tag, nodes...
  local tag=$1; shift
  for n in "$@"; do
    /usr/bin/time -f 'MAXRSS_KB %M' -o "$OUT/$tag-$n.time" /usr/bin/swift-object-replicator "$ETC/object-server/$n.conf" once -i 1 >"$OUT/$tag-$n.log" 2>&1 &
  done
  wait
}
if [ "${INSYNC_ONLY:-}" = 1 ]; then
  # (d): only the in-sync pass (swift_populate.py wrote d1's replicas too).
  t2=$(now); run_nodes four 1 2 3 4; t3=$(now)
  rss=$(cat "$OUT"/*.time | awk '/MAXRSS_KB/ {if ($2>m) m=$2} END {print int(m/1024)}')
  printf '{"system":"swift","objects":%s,"b_inSyncPassWallS":%s,"maxRssMiB":%s}\n' "$N" "$(echo "$t3 - $t2" | bc)" "$rss"
  rm -rf "$OUT" "${CONFS:-}"
  exit 0
fi
# (a) A_RUNS times (default 3; d1 wiped again before each run after the first): the median is
# the figure, every run is listed.
arefills=()
for i in $(seq "${A_RUNS:-3}"); do
  # The wipe: d1's objects folder moved out of the device (removed when the run ends: run.sh
  # passes WIPED_DIR so that it goes after Swiftlet's side too), which is what a replaced or
  # reformatted device looks like. `rm -rf` here (WIPE=rm) leaves ~30,000
  # freed inodes that every creation of the next refill checks one by one on this VM's ext4
  # without a journal (README: the wipe).
  if [ "$i" -gt 1 ]; then
    if [ "${WIPE:-move}" = rm ]; then rm -rf $A/srv/1/node/d1/objects-1
    else mv $A/srv/1/node/d1/objects-1 "${WIPED_DIR:-$OUT}/swift-wiped-$i"; fi
  fi
  # The population (or the wipe) was written without fsync: its writeback must not fall into
  # the timed refill (swiftlet.mjs does the same).
  sync
  t0=$(now); passes=0
  while :; do
    passes=$((passes+1))
    run_nodes a$i-$passes 2 3 4
    [ "$(count)" -ge "$N" ] || [ $passes -ge 6 ] && break
  done
  t1=$(now)
  arefills+=("$(echo "$t1 - $t0" | bc)")
done
amedian=$(median_of "${arefills[@]}")
restored=$(count); missing=$(bytes)
run_nodes settle 1
# (b) B_RUNS times (default 3): the median is the figure, every run is listed.
runs=()
for i in $(seq "${B_RUNS:-3}"); do
  t2=$(now); run_nodes four$i 1 2 3 4; t3=$(now)
  runs+=("$(echo "$t3 - $t2" | bc)")
done
median=$(median_of "${runs[@]}")
# (b') the same in-sync pass as each replicator times it (swift_pass.py: from the start of
# run_once, as Swift's own "replication complete" figure; process start-up and config loading,
# which a daemon pays once and not per pass, excluded): the slowest of the four, B_RUNS times.
pass_runs=()
for i in $(seq "${B_RUNS:-3}"); do
  for n in 1 2 3 4; do
    /usr/bin/python3 "$HERE/swift_pass.py" "$ETC/object-server/$n.conf" >"$OUT/pass$i-$n.json" 2>"$OUT/pass$i-$n.err" &
  done
  wait
  pass_runs+=("$(cat "$OUT"/pass$i-*.json | /usr/bin/python3 -c 'import json, sys; print(max(json.loads(l)["passS"] for l in sys.stdin))')")
done
pass_median=$(median_of "${pass_runs[@]}")
rss=$(cat "$OUT"/*.time | awk '/MAXRSS_KB/ {if ($2>m) m=$2} END {print int(m/1024)}')
printf '{"system":"swift","objects":%s,"a_refillS":%s,"a_runsS":[%s],"a_passes":%s,"a_restored":%s,"c_bytesMissing":%s,"b_inSyncPassWallS":%s,"b_runsS":[%s],"b_passS":%s,"b_passRunsS":[%s],"maxRssMiB":%s}\n' \
  "$N" "$amedian" "$(IFS=,; echo "${arefills[*]}")" "$passes" "$restored" "$missing" "$median" "$(IFS=,; echo "${runs[*]}")" "$pass_median" "$(IFS=,; echo "${pass_runs[*]}")" "$rss"
rm -rf "$OUT" "${CONFS:-}"
