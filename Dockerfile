# Minimal image for the ingest worker; the deployment issue makes it multi-stage with health checks.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 nowcast
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ingest ingest
COPY model model
COPY service service
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install --no-cache-dir .
USER nowcast
ENV NOWCAST_DATA_DIR=/data
VOLUME ["/data"]
ENTRYPOINT ["nowcast"]
CMD ["ingest", "/incoming", "--watch"]
