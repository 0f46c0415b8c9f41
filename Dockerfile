# syntax=docker/dockerfile:1
# One image for every qcdc process: `qcdc serve plans|reports|notify|portal`, `qcdc bus provision`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app

# The dependencies first, in their own layer, from pyproject.toml alone: a change to the
# code reuses it, only a change to the pins rebuilds it. Only the project's dependencies
# (never the `dev` extra: no test or lint tools in the image), at the versions pinned there.
COPY pyproject.toml /app/pyproject.toml
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the code, installed without resolving anything again. data/ holds the importable
# plans and unit kinds (`qcdc plans import data/plans/...` from /app).
COPY README.md /app/README.md
COPY shared /app/shared
COPY services /app/services
COPY data /app/data
RUN pip install --no-cache-dir --no-deps .

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
