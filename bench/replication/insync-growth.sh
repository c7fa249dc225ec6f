#!/bin/bash
# Replication benchmark (d): how the pass over an in-sync cluster (4 nodes, 3 replicas, 1,024
# partitions, every node's replicator at once) grows with the number of objects, Swiftlet beside
# Swift 2.30.1 (SAIO anchor, storage policy 1) in one run. Same setup as run.sh, but every replica
# is written (nothing to refill) and only the in-sync pass is timed.
#   usage: bench/replication/insync-growth.sh [objectCounts="10000 100000"] [objectBytes=4096]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
COUNTS=${1:-"10000 100000"}
SIZE=${2:-4096}
. "$HERE/anchor.sh"
export INSYNC_ONLY=1
echo "| objects | Swift in-sync pass (s) | Swiftlet in-sync pass (s) | Swift / Swiftlet | Swiftlet CPU s: object servers + replicators | Swiftlet replicator max RSS (MiB) |"
echo "|---|---|---|---|---|---|"
for n in $COUNTS; do
  echo "$n objects: populating Swift..." >&2
  /usr/bin/python3 "$HERE/swift_populate.py" "$n" "$SIZE" >&2
  swift=$("$HERE/swift.sh" "$n")
  echo "$n objects: Swiftlet..." >&2
  ours=$(cd "$HERE" && node swiftlet.mjs "$n" "$SIZE")
  echo "$swift" >&2; echo "$ours" >&2
  node -e '
    const [s, o] = process.argv.slice(1).map((t) => JSON.parse(t));
    const f = (x) => x.toFixed(1);
    console.log(`| ${o.objects} | ${f(s.b_inSyncPassWallS)} | ${f(o.b_inSyncPassWallS)} | ${(s.b_inSyncPassWallS / o.b_inSyncPassWallS).toFixed(1)}× | ${o.b_objectServersCpuS} + ${o.b_replicatorsCpuS} | ${o.maxRssMiB} |`);
  ' "$swift" "$ours"
done
