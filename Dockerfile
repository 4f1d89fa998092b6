# syntax=docker/dockerfile:1
# Parlour's image: one image, every service. `docker-compose.yaml` runs it as `parlour serve SERVICE`
# (the same commands as `parlour cluster`); alone it runs embedded mode (`parlour run`).
# Stage 1 builds a virtual environment; stage 2 carries only that environment, run by an unprivileged user.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/parlour
COPY pyproject.toml README.md ./
COPY parlour ./parlour
RUN /opt/parlour/bin/pip install --no-cache-dir /src

FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/parlour/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PARLOUR_HOST=0.0.0.0 \
    PARLOUR_PORT=8000 \
    PARLOUR_DATA_DIR=/var/lib/parlour \
    PARLOUR_LOG_FORMAT=json
RUN groupadd --system --gid 10001 parlour \
    && useradd --system --uid 10001 --gid parlour --home-dir /srv/parlour --create-home parlour \
    && install -d -o parlour -g parlour /var/lib/parlour
COPY --from=build /opt/parlour /opt/parlour
USER 10001:10001
WORKDIR /srv/parlour
EXPOSE 8000
VOLUME ["/var/lib/parlour"]
# /health answers 200 only when every dependency of the process answers (docs/operations.md).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['PARLOUR_PORT']}/health\", timeout=2).status != 200)"]
ENTRYPOINT ["parlour"]
CMD ["run"]
