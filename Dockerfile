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
COPY . .
ENV ASTRADUP_DATA_DIR=/data PYTHONUNBUFFERED=1
VOLUME ["/data"]
EXPOSE 8000
CMD ["python", "manage.py", "serve", "0.0.0.0:8000"]
