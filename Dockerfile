# One image for either role: `serve` (signaling node) or `worker` (media worker).
#   docker build -t telemed .
#   docker run -e TELEMED_SECRET=... -e REDIS_URL=redis://redis:6379/0 -p 8080:8080 telemed serve
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TELEMED_HOST=0.0.0.0 TELEMED_PORT=8080 TELEMED_RECORDINGS_DIR=/data/recordings

RUN useradd --system --create-home --uid 10001 telemed
WORKDIR /app
COPY requirements.txt setup.cfg pyproject.toml README.md LICENSE ./
COPY telemed ./telemed
COPY signaling ./signaling
COPY media ./media
COPY web ./web
RUN pip install -c requirements.txt -e . \
    && mkdir -p /data/recordings && chown -R telemed /data

USER telemed
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"TELEMED_PORT\"]}/healthz')"
ENTRYPOINT ["telemed"]
CMD ["serve"]
