#!/usr/bin/env bash
# Install everything the tests need, then lint, type-check and run the whole test suite.
# This is the command .ci/run calls; it must pass on a clean checkout on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh edge,openvino,hub,dev
# ultralytics (AGPL) is offline tooling only: model_export's export and training use it, and
# tests read bus.jpg and zidane.jpg from its wheel. Installed without its dependencies (its
# opencv-python would shadow opencv-python-headless); what it needs is installed below.
.venv/bin/python -m pip install --quiet --no-deps ultralytics
# The dashboard test drives Debian's Chromium through Playwright (never `playwright install`).
command -v chromium >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
}
# Detector training tests (model_export dataset / yolo train|eval): torch and torchvision from the
# machine's local wheels, and what ultralytics' trainer imports (ultralytics stays --no-deps).
.venv/bin/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1 \
  "opencv-python-headless>=4.9" "tqdm>=4.66" "matplotlib>=3.8" "polars>=1.0" "psutil>=5.9"
# retail-export yolo export simplifies the ONNX graph with onnxslim (the export extra lists it).
.venv/bin/python -m pip install --quiet "onnxslim>=0.1.82"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
