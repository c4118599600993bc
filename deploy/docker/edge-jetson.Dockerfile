# syntax=docker/dockerfile:1
# The edge agent on an NVIDIA Jetson (JetPack 6, L4T r36): CUDA, cuDNN and TensorRT come from
# the L4T base image; ONNX Runtime's GPU build for Jetson is not on PyPI, so give its wheel
# (aarch64, for this image's Python 3.11 and JetPack) as a build argument:
#   docker build -f deploy/docker/edge-jetson.Dockerfile \
#       --build-arg ORT_WHEEL=onnxruntime_gpu-1.20.0-cp311-cp311-linux_aarch64.whl \
#       -t retail-cv/edge-jetson .
# (the wheel file in the repository root, or a URL). Run with --runtime nvidia.

ARG L4T_BASE=nvcr.io/nvidia/l4t-jetpack:r36.4.0

FROM ${L4T_BASE} AS build
ARG ORT_WHEEL=
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive
RUN if [ -z "${ORT_WHEEL}" ]; then \
        echo "build with --build-arg ORT_WHEEL=<onnxruntime-gpu wheel for JetPack 6, cp311>" >&2; \
        exit 1; \
    fi
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3.11 -m venv /opt/retail-cv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY common ./common
COPY edge_agent ./edge_agent
RUN /opt/retail-cv/bin/pip install ".[edge]" \
    && /opt/retail-cv/bin/pip uninstall -y onnxruntime \
    && /opt/retail-cv/bin/pip install "${ORT_WHEEL}"

FROM ${L4T_BASE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10002 --user-group --home-dir /data --shell /usr/sbin/nologin \
        --groups video retail-edge \
    && mkdir -p /data /config \
    && chown retail-edge:retail-edge /data
COPY --from=build /opt/retail-cv /opt/retail-cv
ENV PATH=/opt/retail-cv/bin:$PATH PYTHONUNBUFFERED=1
USER 10002
WORKDIR /data
VOLUME ["/data"]
# The first start builds TensorRT engines (minutes on an Orin Nano): a long start period.
HEALTHCHECK --interval=60s --timeout=10s --start-period=900s --retries=3 \
    CMD ["retail-edge", "outbox", "--config", "/config/store.yaml"]
CMD ["retail-edge", "-v", "run", "--config", "/config/store.yaml"]
