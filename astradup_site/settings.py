"""AstraDup settings: everything comes from environment variables with safe defaults.

Every variable is listed, with its default, in `.env.example` and `docs/configuration.md`.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url

from lib.env import env_auto_int, env_bool, env_float, env_int, env_list, env_str, persistent_secret

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("ASTRADUP_DATA_DIR", str(BASE_DIR / "var"))).resolve()

# Off unless asked for: with it on, an error page shows tracebacks and settings to whoever
# reaches the server (dedup.E010 and `serve` keep it on loopback).
DEBUG = env_bool("DJANGO_DEBUG", False)
DEV_SECRET_KEY = "dev-only-insecure-key-set-DJANGO_SECRET_KEY-in-production"
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    # Without a key: the fixed development one only when DEBUG was turned on explicitly, otherwise
    # a random one made once and kept with the data (mode 0600), so `make run` needs no setting.
    # Workers sign their tasks with it: a worker on another machine needs DJANGO_SECRET_KEY set.
    SECRET_KEY = DEV_SECRET_KEY if DEBUG else persistent_secret(DATA_DIR / "secret_key")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "axes",
    "dedup",
    "review",
]
# The benchmarks' commands (bench/, `make bench*`): off in a normal install, so `manage.py help`
# lists only the product's commands; every `make bench*` target turns it on.
ASTRADUP_BENCH = env_bool("ASTRADUP_BENCH", False)
if ASTRADUP_BENCH:
    INSTALLED_APPS.append("bench")

MIDDLEWARE = [
    # first: it times the whole of every request (/metrics)
    "dedup.observability.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    # outside the session and CSRF middleware, so it sees the cookies they set
    "dedup.security.SecureCookiesOverHttpsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as axes asks
]

ROOT_URLCONF = "astradup_site.urls"
WSGI_APPLICATION = "astradup_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "review.context.roles",
                "dedup.context.jobs",
            ],
        },
    },
]

# Database: DATABASE_URL when set (it must have the `vector` extension available),
# otherwise an embedded PostgreSQL + pgvector kept under ASTRADUP_DATA_DIR/pg.
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    # health checks: a kept connection that a restarted server broke is replaced at the start of
    # the next request or task (Django's close_old_connections), not failed on
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
else:
    from lib.embedded_db import embedded_database_settings

    DATABASES = {"default": embedded_database_settings(DATA_DIR / "pg")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "dedup.security.LoginLockoutBackend",  # django-axes: refuses a locked-out address first
    "django.contrib.auth.backends.ModelBackend",
]
# Login lockout: after this many wrong passwords from one address it is refused (429, Retry-After)
# until the cool-off has passed; a right password resets the count.
AXES_FAILURE_LIMIT = env_int("ASTRADUP_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("ASTRADUP_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "dedup.security.client_ip"
AXES_LOCKOUT_CALLABLE = "dedup.security.lockout_response"
AXES_VERBOSE = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dedup:library"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TZ", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_ROOT = Path(env_str("ASTRADUP_MEDIA_ROOT", str(DATA_DIR / "media"))).resolve()
MEDIA_URL = "media/"
# nginx's internal location for video files and thumbnails (e.g. /_protected): Django checks the
# request and the file, nginx sends it (X-Accel-Redirect; review.views._accel_redirect). Unset:
# Django streams them itself, with Range support.
ASTRADUP_ACCEL_REDIRECT = env_str("ASTRADUP_ACCEL_REDIRECT", "")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # hashed names, collected by `serve` at start (dedup.staticfiles)
        "BACKEND": "dedup.staticfiles.ManifestStaticStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# HTTPS. DJANGO_HTTPS=1 says the site is reached over HTTPS only: then plain-http requests are
# redirected, HSTS is sent and cookies are always Secure (`manage.py check --deploy` passes).
# Without it cookies are still Secure on each request that came over HTTPS
# (dedup.security.SecureCookiesOverHttpsMiddleware), and `make run` works on http://127.0.0.1.
ASTRADUP_HTTPS = env_bool("DJANGO_HTTPS", False)
ASTRADUP_BEHIND_PROXY = env_bool("DJANGO_BEHIND_PROXY", False)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", ASTRADUP_HTTPS)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", ASTRADUP_HTTPS)
CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", ASTRADUP_HTTPS)
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000 if ASTRADUP_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = ASTRADUP_HTTPS
SECURE_HSTS_PRELOAD = ASTRADUP_HTTPS
# a TLS-terminating proxy in front: its X-Forwarded-Proto says whether the client used HTTPS, and
# its X-Forwarded-For the client's address (dedup.security.client_ip)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if ASTRADUP_BEHIND_PROXY else None

# Content-Security-Policy (django-csp): scripts, styles and everything else from this server only;
# no inline script or style (the templates keep theirs in static/), no framing, no plugins.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],  # data: for the icons Swagger UI draws
        "media-src": ["'self'"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# Wrong API tokens from one address before it gets 429 (Retry-After) for the rest of the window
# (dedup.security.ThrottledTokenAuthentication; DRF's throttles run only after authentication).
ASTRADUP_TOKEN_FAILURE_LIMIT = env_int("ASTRADUP_TOKEN_FAILURE_LIMIT", 20)
ASTRADUP_TOKEN_LOCKOUT_SECONDS = env_int("ASTRADUP_TOKEN_LOCKOUT_SECONDS", 900)
# /health details (counts, versions, workers) for monitoring without a login: `Authorization: Bearer …`
ASTRADUP_METRICS_TOKEN = env_str("ASTRADUP_METRICS_TOKEN", "")
# /metrics (Prometheus) answers ASTRADUP_METRICS_TOKEN, or clients in these addresses or networks
# (e.g. 10.0.0.5,192.168.1.0/24). Behind nginx every client is nginx's address unless
# DJANGO_BEHIND_PROXY is on, so 127.0.0.1 here would open /metrics to everyone through it.
ASTRADUP_METRICS_ALLOWED_IPS = env_list("ASTRADUP_METRICS_ALLOWED_IPS", [])

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "dedup.security.ThrottledTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    # generous: a script may page through the library; this stops a runaway loop, not people
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": env_str("ASTRADUP_API_RATE", "1200/minute")},
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AstraDup API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # the schema and its doc page are for logged-in users and token holders only
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI served from this server (no CDN: self-hosted installs may have no internet)
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# A database cache: shared by the web server and the workers, so /health sees the clusters' stats.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "astradup_cache"},
}

# Background work: django-q2 with the ORM broker, so a worker on another machine needs
# only DATABASE_URL (and the shared media path). ASTRADUP_REDIS_URL switches to Redis.
Q_CLUSTER: dict[str, Any] = {
    "name": "astradup",
    "workers": env_int("ASTRADUP_Q_WORKERS", 2),
    "recycle": env_int("ASTRADUP_Q_RECYCLE", 200),
    "timeout": env_int("ASTRADUP_TASK_TIMEOUT", 1800),
    "retry": env_int("ASTRADUP_TASK_TIMEOUT", 1800) + 300,
    "max_attempts": 3,
    "queue_limit": 50,
    "bulk": 5,
    "catch_up": False,
    "ack_failures": True,
    "label": "Task queue",
}
if env_str("ASTRADUP_REDIS_URL"):
    Q_CLUSTER["redis"] = env_str("ASTRADUP_REDIS_URL")
else:
    Q_CLUSTER["orm"] = "default"

# Feature extraction.
ASTRADUP: dict[str, Any] = {
    "BACKBONE": env_str("ASTRADUP_BACKBONE", "efficientnet_lite0"),
    "WEIGHTS_DIR": env_str("ASTRADUP_WEIGHTS_DIR", str(DATA_DIR / "weights")),
    "RESNET50_WEIGHTS": env_str("ASTRADUP_RESNET50_WEIGHTS", ""),
    "CLIP_WEIGHTS": env_str("ASTRADUP_CLIP_WEIGHTS", ""),
    "LITE0_WEIGHTS": env_str("ASTRADUP_LITE0_WEIGHTS", ""),
    "DEVICE": env_str("ASTRADUP_DEVICE", "auto"),
    # video decoding: cpu, cuda (NVDEC), or auto: on the GPU when the embedding runs on CUDA
    "DECODE_DEVICE": env_str("ASTRADUP_DECODE_DEVICE", "auto"),
    "TORCH_THREADS": env_int("ASTRADUP_TORCH_THREADS", 1),
    "EMBED_BATCH": env_int("ASTRADUP_EMBED_BATCH", 0),  # 0: by runtime (8 OpenVINO, 32 torch CPU, 256 CUDA)
    # auto: OpenVINO on CPUs (bf16 where supported), torch on CUDA (fp16); or torch / openvino
    "EMBED_RUNTIME": env_str("ASTRADUP_EMBED_RUNTIME", "auto"),
    "EMBED_PRECISION": env_str("ASTRADUP_EMBED_PRECISION", "auto"),
    # converted models (OpenVINO IR), made once per backbone/weights/runtime version
    "MODEL_CACHE": env_str("ASTRADUP_MODEL_CACHE", str(DATA_DIR / "models")),
    "MAX_FRAMES": env_int("ASTRADUP_MAX_FRAMES", 3600),
    # ... and fewer where their pictures would take more memory than this (portrait and tall videos)
    "FRAME_MEMORY_MB": env_int("ASTRADUP_FRAME_MEMORY_MB", 800),
    # videos shorter than this many seconds are sampled at 2 or 4 fps (see dedup.features.frames)
    "DENSE_MIN_FRAMES": env_int("ASTRADUP_DENSE_MIN_FRAMES", 16),
    # an extraction process marks its claim alive this often; a claim silent for four times as
    # long, or whose process is gone from this host, is dead and its video is tried again
    "HEARTBEAT_SECONDS": env_int("ASTRADUP_HEARTBEAT_SECONDS", 15),
    # extraction processes that may die (crash, kill -9, OOM) on one video before it is failed
    "EXTRACT_ATTEMPTS": env_int("ASTRADUP_EXTRACT_ATTEMPTS", 3),
    "IMPORT_ROOTS": env_list("ASTRADUP_IMPORT_ROOTS", [str(DATA_DIR / "import")]),
    "UPLOAD_MAX_MB": env_int("ASTRADUP_UPLOAD_MAX_MB", 2048),
    # HNSW search breadth; auto (0): scaled with the library's size (dedup.services.candidates.search_plan)
    "HNSW_EF_SEARCH": env_auto_int("ASTRADUP_HNSW_EF_SEARCH"),
    "CANDIDATE_NEIGHBOURS": env_int("ASTRADUP_CANDIDATE_NEIGHBOURS", 40),
    # connections one video's frame search is split over (dedup.services.candidates.frame_neighbours); auto (0):
    # by the library's size, as the breadth
    "CANDIDATE_SEARCH_CONNECTIONS": env_auto_int("ASTRADUP_CANDIDATE_SEARCH_CONNECTIONS"),
    "CANDIDATE_MIN_SIMILARITY": env_float("ASTRADUP_CANDIDATE_MIN_SIMILARITY", 0.60),
    # calibration: labels of each kind needed before a config is proposed, and the precision it aims at
    "CALIBRATION_MIN_LABELS": env_int("ASTRADUP_CALIBRATION_MIN_LABELS", 30),
    "CALIBRATION_TARGET_PRECISION": env_float("ASTRADUP_CALIBRATION_TARGET_PRECISION", 0.99),
}

# ASTRADUP_LOG_FORMAT=json: one JSON object a line (time, level, logger, message, and an
# exception's traceback), for a log collector; gunicorn's own lines too (astradup_site/gunicorn.py)
ASTRADUP_LOG_FORMAT = env_str("ASTRADUP_LOG_FORMAT", "plain")
LOG_FORMATTERS: dict[str, Any] = {
    "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    "json": {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
        "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"},
    },
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": LOG_FORMATTERS,
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if ASTRADUP_LOG_FORMAT == "json" else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": env_str("ASTRADUP_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "pgserver": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # every login at INFO; failures and lockouts are warnings
    },
}
