# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /venv
# Reproducible: every dependency pinned with its hashes (requirements.lock, `make lock`).
COPY requirements.lock build-requirements.lock ./
RUN /venv/bin/pip install --no-cache-dir --require-hashes -r requirements.lock
# The build backend is pinned with its hash too, and the build uses it (no isolated build
# environment fetching an unpinned setuptools).
RUN python -m venv /build && /build/bin/pip install --no-cache-dir --require-hashes \
    -r build-requirements.lock
COPY pyproject.toml ./
# Only the product: the emulators and the dev kit (demo) stay out of the image.
COPY app ./app
COPY providers ./providers
COPY onoffice_client ./onoffice_client
COPY migrations ./migrations
RUN /build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation -w /wheels . \
    && /venv/bin/pip install --no-cache-dir --no-deps /wheels/*.whl

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home /srv connector
WORKDIR /srv
COPY --from=build /venv /venv
COPY alembic.ini ./
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1 ENV=production
USER connector
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["connector", "serve", "--host", "0.0.0.0", "--port", "8000"]
