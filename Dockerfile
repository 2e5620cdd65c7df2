# The API, the CLI and (with the reports feature) the worker: one image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# DejaVu lets PDF reports print any script (Helvetica, the fallback, is Latin only).
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY analytics_service ./analytics_service
COPY index_templates ./index_templates
COPY kibana ./kibana
COPY scripts ./scripts

RUN useradd --system --create-home analytics && mkdir -p /app/data/reports && chown -R analytics /app/data
USER analytics

EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --retries=5 \
  CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)" || exit 1
CMD ["python", "-m", "analytics_service", "serve", "--host", "0.0.0.0", "--port", "8000"]
