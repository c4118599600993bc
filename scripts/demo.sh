#!/usr/bin/env bash
# The main job on embedded defaults, end to end on this machine:
#   1. install the edge agent and the hub into .venv;
#   2. start the hub on loopback (SQLite file out/demo-hub.db, port 8765);
#   3. process a real store video from ../shared/assets with YOLOX-nano: footfall, dwell,
#      heatmap; events and rollups go to the edge outbox, gated images to out/demo-export/;
#   4. enroll the box with a one-time token (as an installer does), sync the outbox to the hub
#      over HTTP with the box's own credentials, and print what the hub now holds.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh edge,openvino,hub
mkdir -p out
rm -rf out/demo-hub.db* out/demo-outbox.sqlite3* out/demo-export out/demo-credentials.json
export DATABASE_URL="sqlite:///out/demo-hub.db"
.venv/bin/retail-hub migrate
.venv/bin/retail-hub serve --port 8765 > out/demo-hub.log 2>&1 &
HUB_PID=$!
trap 'kill $HUB_PID 2>/dev/null || true' EXIT
.venv/bin/python - <<'PY'
import time, httpx
for _ in range(300):
    try:
        if httpx.get("http://127.0.0.1:8765/api/v1/health", timeout=1).status_code == 200:
            break
    except httpx.HTTPError:
        pass
    time.sleep(0.1)
else:
    raise SystemExit("hub did not start; see out/demo-hub.log")
PY
.venv/bin/retail-edge process ../shared/assets/videos/one-by-one-person-detection.mp4 \
  --config examples/demo-store.yaml --outbox --report out/demo-report.json \
  --tracks out/demo-tracks.txt --export-dir out/demo-export
cat out/demo-report.json
TOKEN=$(.venv/bin/retail-hub admin enroll-token --store demo-store)
RETAIL_EDGE_ENROLL_TOKEN="$TOKEN" .venv/bin/retail-edge enroll --config examples/demo-store.yaml
.venv/bin/retail-edge sync --config examples/demo-store.yaml
echo "hub holds for device box-1:"
.venv/bin/python - <<'PY'
import httpx, json
creds = json.load(open("out/demo-credentials.json"))
auth = {"Authorization": "Bearer " + creds["device_secret"]}
state = httpx.get("http://127.0.0.1:8765/api/v1/devices/box-1/sync", headers=auth).json()
print(json.dumps(state, indent=2))
PY
