# Sourced by the replication benchmarks: starts Swift's anchor servers (mode main) unless they are
# running already, and on exit stops them again only if this script started them.
ANCHOR=${ANCHOR:-/work/shared/anchors/swift}
anchor_started=0
if ! "$ANCHOR/status.sh" >/dev/null 2>&1; then
  "$ANCHOR/start.sh" main >/dev/null
  anchor_started=1
  for _ in $(seq 1 60); do "$ANCHOR/status.sh" >/dev/null 2>&1 && break; sleep 1; done
fi
anchor_cleanup() { [ "$anchor_started" = 1 ] && "$ANCHOR/stop.sh" >/dev/null 2>&1 || true; }
trap anchor_cleanup EXIT
