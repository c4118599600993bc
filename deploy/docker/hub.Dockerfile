# syntax=docker/dockerfile:1
# The HQ hub: API (`retail-hub serve`), MQTT ingest worker (`retail-hub worker`), migrations and
# the broker config job, all from one image. Build from the repository root:
#   docker build -f deploy/docker/hub.Dockerfile -t retail-cv/hub .

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/retail-cv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY common ./common
COPY cloud_hub ./cloud_hub
RUN /opt/retail-cv/bin/pip install ".[hub]"

FROM python:3.11-slim-bookworm
# uid 10001: compose runs Mosquitto under the same uid, so it can read the broker's password
# file (0600) that `retail-hub broker-config` writes into their shared volume.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/retail-hub \
        --shell /usr/sbin/nologin retail \
    && mkdir -p /var/lib/retail-hub/broker \
    && chown -R retail:retail /var/lib/retail-hub
COPY --from=build /opt/retail-cv /opt/retail-cv
ENV PATH=/opt/retail-cv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DATABASE_URL=sqlite:////var/lib/retail-hub/hub.db
USER 10001
WORKDIR /var/lib/retail-hub
EXPOSE 8000
# Liveness of the API (200 while the database answers). The worker's compose service
# overrides this; see deploy/compose.yaml.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health', timeout=4)"]
CMD ["retail-hub", "serve", "--host", "0.0.0.0", "--port", "8000"]
