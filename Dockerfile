# SOL-Bot for development (docker-compose.yml); production runs under systemd (deploy/systemd).
# Build: docker build -t solbot .
# Run:   docker run -e SOLBOT_API_TOKEN=<16+ chars> -p 127.0.0.1:3001:3001 solbot
# (it listens on 0.0.0.0 inside the container, so the API token is required: the bot refuses
# to start on a non-loopback address without one)
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim-bookworm
RUN groupadd --system solbot && useradd --system --gid solbot --home-dir /app solbot \
    && mkdir -p /app/data /app/logs && chown -R solbot:solbot /app
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SOLBOT_HOME=/app \
    SOLBOT_HOST=0.0.0.0 \
    SOLBOT_PORT=3001
WORKDIR /app
USER solbot
VOLUME ["/app/data", "/app/logs"]
EXPOSE 3001
# the API answers 200 only when healthy (fresh market data, no kill switch)
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:3001/api/status', timeout=4).status != 200)"]
# SIGTERM → graceful stop (orders cancelled, books persisted) well inside the 30 s grace
STOPSIGNAL SIGTERM
ENTRYPOINT ["solbot"]
CMD ["run"]
