#!/bin/bash
# Replication benchmark: Swiftlet's object replicator beside Swift 2.30.1's (SAIO anchor,
# storage policy 1), same object count and size, in one run. Needs `make build` (the programs'
# bundles included) and the anchor set up (/work/shared/anchors/swift/setup.sh). Starts the anchor's servers (mode main) if they are not
# running, and stops them again at the end if it started them.
#   usage: bench/replication/run.sh [objects=10000] [objectBytes=4096]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
N=${1:-10000}
SIZE=${2:-4096}
OUT=$(mktemp -d /tmp/replbench.XXXXXX)
. "$HERE/anchor.sh"
echo "swift: populating $N objects of $SIZE bytes (policy 1)..." >&2
/usr/bin/python3 "$HERE/swift_populate.py" "$N" "$SIZE" >&2
echo "swift: measuring..." >&2
# Swift's wiped folders are removed at the end, with $OUT, not before Swiftlet's side runs.
WIPED_DIR="$OUT" "$HERE/swift.sh" "$N" | tee "$OUT/swift.json" >&2
echo "swiftlet: populating and measuring..." >&2
(cd "$HERE" && node swiftlet.mjs "$N" "$SIZE") | tee "$OUT/swiftlet.json" >&2
node "$HERE/table.mjs" "$OUT/swift.json" "$OUT/swiftlet.json"
rm -rf "$OUT"
