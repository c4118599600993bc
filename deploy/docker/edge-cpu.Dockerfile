# syntax=docker/dockerfile:1
# The edge agent on an x86 or ARM box without a GPU (ONNX Runtime on the CPU). Build from the
# repository root:
#   docker build -f deploy/docker/edge-cpu.Dockerfile -t retail-cv/edge-cpu .
# Run with the store config, the model and a data volume (outbox, credentials):
#   docker run -v /etc/retail-cv:/config:ro -v retail-edge-data:/data retail-cv/edge-cpu
# Enroll once: docker run ... retail-cv/edge-cpu retail-edge enroll --config /config/store.yaml \
#   --token TOKEN   (the config's credentials_file and outbox.path point into /data)

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
ARG EXTRAS=edge
RUN python -m venv /opt/retail-cv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY common ./common
COPY edge_agent ./edge_agent
RUN /opt/retail-cv/bin/pip install ".[${EXTRAS}]"

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10002 --user-group --home-dir /data --shell /usr/sbin/nologin \
        retail-edge \
    && mkdir -p /data /config \
    && chown retail-edge:retail-edge /data
COPY --from=build /opt/retail-cv /opt/retail-cv
ENV PATH=/opt/retail-cv/bin:$PATH PYTHONUNBUFFERED=1
USER 10002
WORKDIR /data
VOLUME ["/data"]
# The config parses and the outbox opens (the agent's loop itself is watched by the container's
# restart policy; on bare metal the systemd watchdog does more).
HEALTHCHECK --interval=60s --timeout=10s --start-period=60s --retries=3 \
    CMD ["retail-edge", "outbox", "--config", "/config/store.yaml"]
CMD ["retail-edge", "-v", "run", "--config", "/config/store.yaml"]
