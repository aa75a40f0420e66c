#!/usr/bin/env bash
# Screenshot of the viewer for the README: starts `orbis serve` on a free port with a throwaway
# cache, warms the tiles of the start view, takes a headless Chromium screenshot, stops the server.
#   bash bench/screenshot.sh [docs/img/screenshot.png]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/img/screenshot.png}
PORT=${PORT:-8765}
CACHE=$(mktemp -d)
.venv/bin/orbis serve --port "$PORT" --cache "$CACHE" > "$CACHE/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$CACHE"' EXIT
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 1; done
# warm the view: Europe at zoom 6 (generated tiles, 2 levels below the Blue Marble base)
for x in 31 32 33 34 35 36; do for y in 20 21 22 23; do
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/tiles/earth/6/$x/$y.png" || true
done; done
chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
  --window-size=1200,760 --virtual-time-budget=20000 --screenshot="$OUT" \
  "http://127.0.0.1:$PORT/#6/46.5/10.0" 2>/dev/null
echo "wrote $OUT"
