#!/usr/bin/env bash
# Install everything the tests need, then lint, type-check and run the whole test suite.
# This is the command .ci/run calls; it must pass on a clean checkout on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh edge,openvino,hub,dev
# bus.jpg and zidane.jpg ship inside the ultralytics wheel (AGPL): installed without its
# dependencies, only so tests can read those two images; no project code imports it.
.venv/bin/python -m pip install --quiet --no-deps ultralytics
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
