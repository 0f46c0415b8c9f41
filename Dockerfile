# syntax=docker/dockerfile:1
# One image for every qcdc process: `qcdc serve plans|reports|notify|portal`, `qcdc bus provision`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app

# The whole project (what .dockerignore lets through): pyproject.toml, README.md, shared/,
# services/ and data/ when it exists.
COPY . /app
RUN pip install --no-cache-dir .

# Unprivileged user; /var/lib/qcdc is its data folder (the reports service keeps its
# attachments there, on a volume). A named volume mounted there inherits this ownership.
RUN groupadd --system qcdc \
    && useradd --system --gid qcdc --home-dir /var/lib/qcdc --no-create-home \
       --shell /usr/sbin/nologin qcdc \
    && mkdir -p /var/lib/qcdc \
    && chown qcdc:qcdc /var/lib/qcdc \
    && chmod 0700 /var/lib/qcdc

# Listening on every interface of the container, so never open: every API call needs a
# token (QCDC_AUTH=open refuses to start on 0.0.0.0 anyway).
ENV QCDC_HTTP_HOST=0.0.0.0 \
    QCDC_AUTH=tokens \
    QCDC_DATA_DIR=/var/lib/qcdc

USER qcdc

EXPOSE 8301 8302 8303 8304

CMD ["qcdc", "--help"]
