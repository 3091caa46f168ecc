# One image for every closeloop service; the command picks what runs:
#   docker run IMAGE serve dispatch        # one service (trigger is the default; console, …)
#   docker run IMAGE migrate               # database migrations (DATABASE_URL)
#   docker run IMAGE topics --partitions 12 --replication 3
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000 \
    CLOSELOOP_ENV=production \
    CLOSELOOP_SCORING_TEXT_CACHE=/app/dictionaries

# A fixed numeric uid/gid so that Kubernetes' runAsNonRoot can verify it (deploy/base uses 10001).
RUN groupadd --system --gid 10001 closeloop \
 && useradd --system --uid 10001 --gid closeloop --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin closeloop

WORKDIR /app
COPY pyproject.toml README.md ./
COPY closeloop ./closeloop
COPY shared ./shared
COPY services ./services
# Runtime dependencies only, without the dev extra (tests, linters).
# Scoring's word lists as tries, built once here (the root filesystem is read-only at run time).
RUN pip install --no-cache-dir . \
 && rm -rf /app/build /app/*.egg-info \
 && closeloop dictionaries

USER 10001:10001
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]

ENTRYPOINT ["closeloop"]
CMD ["serve", "trigger"]
