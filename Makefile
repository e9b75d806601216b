# Two commands do all set-up on a fresh Debian 12 machine: `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := ffmpeg libchromaprint1
# the embedded database's pgvector is compiled here (lib/portable_pgvector.py)
APT_PACKAGES += gcc libc6-dev make
BENCH_MEDIA ?= /tmp/bench_media_dev
BENCH_OUT ?= /tmp/bench_dev
BENCH_SEED ?= 1
BENCH_DATA ?= var/bench
# every bench* command runs with the benchmarks' app installed (bench/, settings.ASTRADUP_BENCH)
BENCH_ENV := ASTRADUP_BENCH=1
BENCH_HARD_SEED ?= 11
BENCH_HARD_OUT ?= /tmp/bench_hard
BENCH_HARD_DATA ?= var/bench-hard

.PHONY: run test bench bench-hard bench-perf bench-embed bench-gpu bench-index bench-calibrate bench-review bench-review-ui bench-api deploy-check lint migrations-check system-deps venv clean screenshots

system-deps:
	@missing=""; for p in $(APT_PACKAGES) $(EXTRA_APT); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; fi

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	# torch and torchvision are pinned (2.14.1 / 0.29.1): an unpinned torch pulls a multi-GB build
	$(PY) -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed
	$(PY) -m lib.portable_pgvector

# gunicorn and a worker cluster on the embedded database (dedup/management/commands/serve.py)
run: system-deps venv
	$(PY) manage.py serve

# browser tests drive Debian's chromium (never a downloaded browser)
# and the web-server tests a real nginx and Redis (tests/test_accel.py, tests/test_observability.py)
test: EXTRA_APT = chromium nginx-light redis-server
test: system-deps venv
	$(PY) -m ruff check .
	ASTRADUP_DATA_DIR=$(CURDIR)/var/test $(PY) -m mypy
	ASTRADUP_DATA_DIR=$(CURDIR)/var/test $(PY) manage.py makemigrations --check --dry-run -v0
	ASTRADUP_DATA_DIR=$(CURDIR)/var/test $(PY) -m pytest $(PYTEST_ARGS)

migrations-check: venv
	ASTRADUP_DATA_DIR=$(CURDIR)/var/test $(PY) manage.py makemigrations --check --dry-run

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# The development benchmark end to end on a fresh data dir (see docs/benchmarks.md).
bench: system-deps venv
	../shared/bench/fetch_media.sh $(BENCH_MEDIA)
	test -f $(BENCH_OUT)/manifest.csv || python3 ../shared/bench/make_bench.py $(BENCH_MEDIA) $(BENCH_OUT) --seed $(BENCH_SEED)
	rm -rf $(BENCH_DATA)
	$(BENCH_ENV) ASTRADUP_DATA_DIR=$(CURDIR)/$(BENCH_DATA) ASTRADUP_MODEL_CACHE=$(CURDIR)/var/model-cache \
	  $(PY) manage.py bench $(BENCH_OUT) --evaluator ../shared/bench/evaluate.py

# The hard development benchmark (issue 26; docs/benchmarks.md, "Hard benchmark"): PiP, stacks,
# replaced music, speed, montages, screen recordings. Seeds 11 and 12 are for development; 21 and 22
# are held out. BENCH_HARD_ARGS reaches the generator (e.g. --jobs 2).
bench-hard: system-deps venv
	../shared/bench/fetch_media.sh $(BENCH_MEDIA)
	test -f $(BENCH_HARD_OUT)/manifest.csv || python3 bench/hard/make_hard.py $(BENCH_MEDIA) $(BENCH_HARD_OUT) --seed $(BENCH_HARD_SEED) $(BENCH_HARD_ARGS)
	rm -rf $(BENCH_HARD_DATA)
	$(BENCH_ENV) ASTRADUP_DATA_DIR=$(CURDIR)/$(BENCH_HARD_DATA) ASTRADUP_MODEL_CACHE=$(CURDIR)/var/model-cache \
	  $(PY) manage.py bench $(BENCH_HARD_OUT) --evaluator ../shared/bench/evaluate.py

# refresh the screenshots in docs/screenshots from the browser test
screenshots: EXTRA_APT = chromium
screenshots: system-deps venv
	ASTRADUP_DATA_DIR=$(CURDIR)/var/test ASTRADUP_SCREENSHOTS=$(CURDIR)/docs/screenshots $(PY) -m pytest -q tests/test_browser.py

# throughput on one-minute 720p clips, by stage, against docs/bench-perf.json (BENCH_PERF_ARGS=--save to update it),
# and the ratio to the decode floor (ffmpeg -threads 1 -skip_frame noref) timed on the same clips in the same run
bench-perf: system-deps venv
	../shared/bench/fetch_media.sh $(BENCH_MEDIA)
	rm -rf var/bench-perf
	$(BENCH_ENV) ASTRADUP_DATA_DIR=$(CURDIR)/var/bench-perf ASTRADUP_MODEL_CACHE=$(CURDIR)/var/model-cache \
	  $(PY) manage.py bench_perf --media $(BENCH_MEDIA) --clips-dir $(CURDIR)/var/perf-clips $(BENCH_PERF_ARGS)

# embedding runtimes side by side on a perf clip (after bench-perf made the clips)
bench-embed: venv
	$(BENCH_ENV) ASTRADUP_MODEL_CACHE=$(CURDIR)/var/model-cache $(PY) manage.py bench_embed $(CURDIR)/var/perf-clips/perf001.mp4 --frames 240

# on a machine with CUDA, after bench-perf made the clips: fp16 drift, backbone rates, and a worker
# pool's videos/hour on the clip docs/benchmarks.md (GPU) reports
bench-gpu: venv
	$(BENCH_ENV) $(PY) scripts/gpu_bench.py --clip $(CURDIR)/var/perf-clips/perf022.mp4 --out $(CURDIR)/var/gpu-bench.json $(BENCH_GPU_ARGS)

# the frame-vector index at scale: synthetic 1280-d frame embeddings (BENCH_INDEX_ARGS="--vectors 200000" for a quick run)
bench-index: venv
	rm -rf var/bench-index
	$(BENCH_ENV) ASTRADUP_DATA_DIR=$(CURDIR)/var/bench-index $(PY) manage.py migrate -v0
	$(BENCH_ENV) ASTRADUP_DATA_DIR=$(CURDIR)/var/bench-index $(PY) manage.py bench_index $(BENCH_INDEX_ARGS)

# after `make bench`: label half the candidate pairs from the ground truth, calibrate, score the other half
bench-calibrate: venv
	$(BENCH_ENV) ASTRADUP_DATA_DIR=$(CURDIR)/$(BENCH_DATA) $(PY) manage.py bench_calibrate $(BENCH_OUT) --evaluator ../shared/bench/evaluate.py

# after `make bench`: server time of the review screens with 10,000 pairs in the bench library
bench-review: venv
	$(BENCH_ENV) ASTRADUP_DATA_DIR=$(CURDIR)/$(BENCH_DATA) $(PY) manage.py bench_review --pairs 10000

# the review screen in Chromium: a scripted moderator's 50 keyboard decisions on a generated library,
# ms per decision from the key to the next pair's card and to its keyframes and players ready
bench-review-ui: EXTRA_APT = chromium
bench-review-ui: system-deps venv
	rm -rf var/bench-review-ui
	ASTRADUP_DATA_DIR=$(CURDIR)/var/bench-review-ui ASTRADUP_BENCH_REVIEW_UI=1 \
	  $(PY) -m pytest -q -s -p no:cacheprovider tests/test_bench_review_ui.py

# the bench folder imported through the REST API and processed by a worker cluster
bench-api: system-deps venv
	rm -rf var/bench-api
	$(BENCH_ENV) ASTRADUP_DATA_DIR=$(CURDIR)/var/bench-api ASTRADUP_IMPORT_ROOTS=$(BENCH_OUT) \
	  $(PY) manage.py bench_api_import $(BENCH_OUT) --evaluator ../shared/bench/evaluate.py

# the production topology on this machine (PostgreSQL 15 + pgvector, Redis, gunicorn behind nginx,
# two worker clusters on loopback ports, in a temporary folder), used through nginx and stopped
# with SIGTERM (scripts/deploy_check.py; DEPLOY_CHECK_ARGS=--keep keeps its folder)
deploy-check: EXTRA_APT = nginx-light redis-server postgresql-15 postgresql-server-dev-15
deploy-check: system-deps venv
	$(PY) scripts/deploy_check.py $(DEPLOY_CHECK_ARGS)

clean:
	rm -rf var/test var/bench
