# syntax=docker/dockerfile:1
# The edge agent on an x86 box with an NVIDIA GPU: ONNX Runtime with the TensorRT and CUDA
# execution providers (model.providers: auto picks TensorRT, then CUDA, then CPU). Needs the
# NVIDIA Container Toolkit on the host: docker run --gpus all ... Build from the repository root:
#   docker build -f deploy/docker/edge-cuda.Dockerfile -t retail-cv/edge-cuda .
# ONNX Runtime's GPU build and TensorRT must match (onnxruntime.ai, "TensorRT Execution
# Provider", requirements table): pin both with --build-arg for a reproducible image.

ARG CUDA_BASE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

FROM ${CUDA_BASE} AS build
ARG ORT_GPU=onnxruntime-gpu
ARG TENSORRT=tensorrt-cu12-libs
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/retail-cv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY common ./common
COPY edge_agent ./edge_agent
# The CPU onnxruntime out, its GPU build and the TensorRT libraries in.
RUN /opt/retail-cv/bin/pip install ".[edge]" \
    && /opt/retail-cv/bin/pip uninstall -y onnxruntime \
    && /opt/retail-cv/bin/pip install "${ORT_GPU}" "${TENSORRT}"

FROM ${CUDA_BASE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10002 --user-group --home-dir /data --shell /usr/sbin/nologin \
        retail-edge \
    && mkdir -p /data /config \
    && chown retail-edge:retail-edge /data
COPY --from=build /opt/retail-cv /opt/retail-cv
# TensorRT's libraries come from its wheel; TensorRT engines are cached under /data.
ENV PATH=/opt/retail-cv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LD_LIBRARY_PATH=/opt/retail-cv/lib/python3.12/site-packages/tensorrt_libs
USER 10002
WORKDIR /data
VOLUME ["/data"]
HEALTHCHECK --interval=60s --timeout=10s --start-period=600s --retries=3 \
    CMD ["retail-edge", "outbox", "--config", "/config/store.yaml"]
CMD ["retail-edge", "-v", "run", "--config", "/config/store.yaml"]
