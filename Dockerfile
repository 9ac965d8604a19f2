# ippam: one image for every process (web, worker, beat, watch, migrate); the command picks one.
# Build: docker build -t ippam .   Run: docker compose up -d (docker-compose.yml), or deploy/.

# --- build: install the locked dependencies and ippam into a virtualenv --------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The lock file first: this layer is rebuilt only when the pinned versions change.
COPY requirements/prod.txt requirements/prod.txt
RUN pip install -r requirements/prod.txt
# The project runs from its folder (settings find templates/ and static/ beside dashboard/),
# so it is copied, not pip-installed: every dependency comes from the lock file above.
COPY manage.py pyproject.toml ./
COPY dashboard dashboard
COPY ippam ippam
COPY simcluster simcluster
COPY static static
COPY templates templates
# Hashed, compressed static files baked into the image, where settings look (STATIC_ROOT is
# not under the var volume, which would hide them). IPPAM_TESTING=false: a real build.
RUN DEBUG=true SECRET_KEY=build-only IPPAM_ENV_FILE= IPPAM_STATIC_ROOT=/src/staticfiles \
    python manage.py collectstatic --no-input -v 0

# --- runtime: the virtualenv, the project files, a non-root user ------------------------------
FROM python:3.11-slim AS runtime
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PATH=/opt/venv/bin:$PATH \
    IPPAM_VAR_DIR=/var/lib/ippam IPPAM_STATIC_ROOT=/app/staticfiles IPPAM_ENV_FILE=
RUN groupadd --system --gid 10001 ippam \
    && useradd --system --uid 10001 --gid ippam --home-dir /app --shell /usr/sbin/nologin ippam \
    && mkdir -p /var/lib/ippam \
    && chown ippam:ippam /var/lib/ippam
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --from=build /src/manage.py /src/pyproject.toml ./
COPY --from=build /src/dashboard dashboard
COPY --from=build /src/ippam ippam
COPY --from=build /src/simcluster simcluster
COPY --from=build /src/templates templates
COPY --from=build /src/static static
COPY --from=build /src/staticfiles staticfiles
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["gunicorn", "dashboard.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
