FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/runstats-metrics

WORKDIR /app
COPY setup.cfg pyproject.toml README.md ./
COPY runstats_app ./runstats_app
COPY migrations ./migrations
COPY wsgi.py gunicorn.conf.py ./
RUN pip install . && useradd --system --uid 10001 runstats
USER runstats

EXPOSE 8000
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
