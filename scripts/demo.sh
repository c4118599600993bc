#!/usr/bin/env bash
# The main job on embedded defaults: install the edge agent, then process a real store video
# from ../shared/assets with the YOLOX-nano model, and print the JSON report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh edge,openvino
mkdir -p out
.venv/bin/retail-edge process ../shared/assets/videos/one-by-one-person-detection.mp4 \
  --config examples/demo-store.yaml --report out/demo-report.json --tracks out/demo-tracks.txt
cat out/demo-report.json
