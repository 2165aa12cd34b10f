# syntax=docker/dockerfile:1
# One image for every process of the service; the compose file runs one verb per container
# (nowcast ingest, infer, serve, publish). CPU torch by default; for GPU inference workers:
#   docker build --build-arg TORCH_VARIANT=cu128 -t nowcast:cuda .
# (the CUDA wheels of torch bring their own CUDA runtime; the host needs the NVIDIA driver and
# container toolkit). See deploy/README.md.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- builder: a virtualenv with torch first, then the project (non-editable) ------------------
FROM ${PYTHON_IMAGE} AS builder
ARG TORCH_VERSION=2.13.0
ARG TORCH_VARIANT=cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/${TORCH_VARIANT}
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# pysteps compiles its Cython extensions (with OpenMP) from source.
# Debian packages are not pinned: the base image fixes the Debian release, and exact package
# versions leave the archive with each security update, which would break rebuilds; pin the
# base image by digest (--build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:...) to
# freeze them too.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch FIRST from the variant's index, so that "torch>=2.3" is already met and pip does not
# pull the CUDA wheels into a CPU image
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY core core
COPY ingest ingest
COPY model model
COPY service service
# non-editable: code, the shipped checkpoint and the dashboard page land in site-packages;
# every dependency at the version the tests passed with (constraints.txt)
RUN pip install -c constraints.txt . && pip uninstall -y pip

# -- runtime: the virtualenv and what it links against, run as a non-root user -----------------
FROM ${PYTHON_IMAGE} AS runtime
# libgomp1: OpenMP runtime of pysteps' compiled motion extensions (not pinned: see above)
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --user-group nowcast \
    && mkdir -p /data/incoming \
    && chown -R nowcast:nowcast /data
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    NOWCAST_DATA_DIR=/data
# by number, so that the runtime (and Kubernetes' runAsNonRoot) can check it is not root
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000 9101
# the default command is the API; compose gives each service its own (nowcast health TARGET)
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["nowcast", "health", "api"]
CMD ["nowcast", "serve", "--host", "0.0.0.0"]
