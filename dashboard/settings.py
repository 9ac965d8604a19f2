"""ippam settings, read from the environment (see .env.example for every variable).

Defaults are the embedded ones: a SQLite file in the project folder and a broker that needs
no server (kombu's filesystem transport), so `make run` works on a bare machine. Production
sets DATABASE_URL and REDIS_URL.

A `.env` file at the project root (`make run` writes one on first run) is read too; a variable
set in the environment wins over the file. IPPAM_ENV_FILE names another file ("" reads none).
Under pytest only an explicit IPPAM_ENV_FILE is read, so a developer's .env cannot change tests.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from dashboard.env import (
    database_from_url,
    env_bool,
    env_float,
    env_int,
    env_list,
    load_env_file,
)

BASE_DIR = Path(__file__).resolve().parent.parent
_env_file = os.environ.get("IPPAM_ENV_FILE")
if _env_file is None and "pytest" not in sys.modules:
    load_env_file(BASE_DIR / ".env")
elif _env_file:
    load_env_file(Path(_env_file))
VAR_DIR = Path(os.environ.get("IPPAM_VAR_DIR", BASE_DIR / "var"))

DEBUG = env_bool("DEBUG", default=False)
TESTING = "pytest" in sys.modules or env_bool("IPPAM_TESTING", default=False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG or TESTING:
        SECRET_KEY = "insecure-development-key-do-not-use-in-production"
    else:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), or DEBUG=true for development."
        )
if SECRET_KEY.startswith("change-me") and not (DEBUG or TESTING):
    # The placeholder of deploy/secret.example.yaml and .env.example: public, so forgeable.
    raise ImproperlyConfigured(
        "SECRET_KEY is still the example's placeholder. Set it to a long random string "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if not DEBUG else ["*"]
)
if os.environ.get("IPPAM_POD_IP"):
    # In Kubernetes (deploy/ sets it from the downward API): kubelet probes and Prometheus
    # reach the pod by its IP, which is then the Host header.
    _pod_ip = os.environ["IPPAM_POD_IP"]
    ALLOWED_HOSTS = [*ALLOWED_HOSTS, f"[{_pod_ip}]" if ":" in _pod_ip else _pod_ip]
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "csp",
    "django_filters",
    "django_htmx",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "template_partials",
    "axes",
    "ippam",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files from the app itself (compressed, cache-forever hashed names): the image
    # needs no web server in front to be styled, and a proxy in front needs no volume.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out log-in into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

# --- Limits on guessing (dashboard.throttling) ----------------------------------------------
# Log-ins: after IPPAM_LOGIN_FAILURE_LIMIT failures for one user name, or from one client
# address, that name or address is refused (429, a page that says so) for
# IPPAM_LOGIN_LOCKOUT_SECONDS; `manage.py axes_reset_username NAME` (or axes_reset_ip ADDR)
# lifts it sooner. API tokens: past IPPAM_TOKEN_FAILURE_RATE bad tokens from an address, it
# gets 429. Behind a proxy, IPPAM_TRUSTED_PROXIES (the number of proxies that append to
# X-Forwarded-For; an Ingress: 1) makes the client's address count, not the proxy's.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
IPPAM_LOGIN_FAILURE_LIMIT = env_int("IPPAM_LOGIN_FAILURE_LIMIT", 10)
IPPAM_LOGIN_LOCKOUT_SECONDS = env_int("IPPAM_LOGIN_LOCKOUT_SECONDS", 15 * 60)
IPPAM_TOKEN_FAILURE_RATE = os.environ.get("IPPAM_TOKEN_FAILURE_RATE", "10/min")
IPPAM_TRUSTED_PROXIES = env_int("IPPAM_TRUSTED_PROXIES", 0)
AXES_FAILURE_LIMIT = IPPAM_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=IPPAM_LOGIN_LOCKOUT_SECONDS)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "dashboard.throttling.client_ip"
AXES_VERBOSE = False


def _throttle_cache() -> dict[str, object]:
    # Shared by every web process through Redis when there is one (else per process).
    redis_url = os.environ.get("REDIS_URL", "")
    if redis_url:
        return {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": "ippam",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"}


CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "throttle": _throttle_cache(),
}

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"

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
                "dashboard.context_processors.layout",
            ],
        },
    }
]

DATABASES = {
    "default": database_from_url(
        os.environ.get("DATABASE_URL", "sqlite:///db.sqlite3"), base_dir=BASE_DIR
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The dashboard, the worker and the watcher write to one file: wait for the lock
    # instead of failing, and let readers proceed while a sync writes (WAL).
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
if TESTING:
    # Test users log in hundreds of times; the production hasher costs ~0.8 s each here.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Not under VAR_DIR: the image collects the files at build time into its read-only layer, and
# compose and Kubernetes mount their own volume on VAR_DIR, which would hide them.
STATIC_ROOT = Path(os.environ.get("IPPAM_STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Hashed names (cached forever by browsers) need `collectstatic`; tests render pages
        # without it, so they use the plain storage.
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
if TESTING:
    # Tests never collect: whitenoise looks the files up per request (and does not warn that
    # STATIC_ROOT is missing).
    WHITENOISE_AUTOREFRESH = True
    WHITENOISE_USE_FINDERS = True

# --- HTTP security --------------------------------------------------------------------------
# Behind a TLS-terminating proxy (or an Ingress) set IPPAM_HTTPS=true: plain-HTTP requests are
# redirected, browsers are told to use HTTPS only (HSTS), cookies travel only over HTTPS, and
# the proxy's X-Forwarded-Proto says whether the request came in over HTTPS. Only behind a
# proxy that sets (and overwrites) X-Forwarded-Proto: otherwise clients could claim it.
IPPAM_HTTPS = env_bool("IPPAM_HTTPS", default=False)
if IPPAM_HTTPS:
    SECURE_SSL_REDIRECT = True
    # kubelet probes and Prometheus scrape the pod directly, over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("IPPAM_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("IPPAM_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env_bool("IPPAM_HSTS_PRELOAD", default=False)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if not SECURE_HSTS_PRELOAD:
        # Preloading commits the whole domain (every subdomain, for years) to HTTPS in every
        # browser: the domain owner's decision (IPPAM_HSTS_PRELOAD=true), not a default. The
        # header without it protects every visit after the first.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
X_FRAME_OPTIONS = "DENY"

# No inline scripts or styles anywhere (django-csp 4): htmx is a file, and the htmx-config meta
# tag turns off the <style> htmx would otherwise inject for its indicators.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# --- REST API (dashboard/api) -------------------------------------------------------------
# Token (`manage.py drf_create_token USER`) or the browser's session; roles as on the pages.
# JSON and CSV only: DRF's browsable API sets inline styles the CSP forbids; people browse
# the API through the Swagger UI page (/api/v1/docs/), which has nothing inline.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "dashboard.throttling.ThrottledTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["dashboard.api.permissions.RolePermission"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "dashboard.api.renderers.CSVRenderer",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ippam API",
    "DESCRIPTION": "Multus + Whereabouts IPAM: pools, allocations, leaks and alerts.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI from drf-spectacular-sidecar's static files: no CDN (the CSP allows 'self').
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery -------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
else:
    # No Redis: kombu's filesystem transport passes messages through a folder, so the
    # worker and beat still run as separate processes on a bare machine.
    _broker_dir = VAR_DIR / "broker"
    # A hostname, though the transport ignores it: without one kombu warns "No hostname was
    # supplied" in every process.
    CELERY_BROKER_URL = "filesystem://localhost/"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = f"file://{VAR_DIR / 'results'}"
    # kombu and celery expect these folders to exist; every process may be the first one.
    for _folder in ("out", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    (VAR_DIR / "results").mkdir(parents=True, exist_ok=True)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "ippam"
# Syncs, reclaim runs and notifications each on their own queue, so a burst of one never
# waits in front of another (30,000 alert sends once held a sync back for minutes). Every
# worker consumes all of them by default (-Q in Procfile.dev, docker-compose.yml and
# deploy/); run a worker per queue to separate them.
CELERY_TASK_ROUTES = {
    "ippam.tasks.sync_cluster": {"queue": "sync"},
    "ippam.tasks.sync_all_clusters": {"queue": "sync"},
    "ippam.tasks.detect_leaks": {"queue": "sync"},
    "ippam.tasks.reclaim_run": {"queue": "reclaim"},
    "ippam.tasks.deliver_alert_notification": {"queue": "notify"},
    "ippam.tasks.notify_flush": {"queue": "notify"},
}
CELERY_RESULT_EXPIRES = 3600
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- ippam --------------------------------------------------------------------------------
IPPAM_SYNC_INTERVAL_SECONDS = env_int("IPPAM_SYNC_INTERVAL_SECONDS", 300)
IPPAM_LEAK_GRACE_SECONDS = env_int("IPPAM_LEAK_GRACE_SECONDS", 120)
IPPAM_POOL_ALERT_THRESHOLD = env_float("IPPAM_POOL_ALERT_THRESHOLD", 0.90)
IPPAM_EVENT_RETENTION_SECONDS = env_int("IPPAM_EVENT_RETENTION_SECONDS", 24 * 3600)
# How long an address freed from an IPPool shows as "recently freed" (map, search).
IPPAM_FREED_RETENTION_SECONDS = env_int("IPPAM_FREED_RETENTION_SECONDS", 24 * 3600)
IPPAM_LIST_PAGE_SIZE = env_int("IPPAM_LIST_PAGE_SIZE", 500)
IPPAM_STALE_AFTER_SECONDS = env_int("IPPAM_STALE_AFTER_SECONDS", 3 * IPPAM_SYNC_INTERVAL_SECONDS)
IPPAM_NAD_NAMESPACES = env_list("IPPAM_NAD_NAMESPACES", [])  # empty: every synced namespace
IPPAM_RECLAIM_MAX_ATTEMPTS = env_int("IPPAM_RECLAIM_MAX_ATTEMPTS", 3)
# How old the list of live pods may be when reclaim re-checks who holds an address.
IPPAM_RECLAIM_HOLDERS_MAX_AGE_SECONDS = env_int("IPPAM_RECLAIM_HOLDERS_MAX_AGE_SECONDS", 30)
# A running reclamation whose worker is silent this long is marked failed when read.
IPPAM_RECLAIM_DEADLINE_SECONDS = env_int("IPPAM_RECLAIM_DEADLINE_SECONDS", 600)
# Seconds a write the web asks for (creating a NAD) waits for the API server. Well under
# gunicorn's 30 s worker timeout: the request also re-reads the object when this runs out, and
# a worker killed mid-request would leave the person with no answer at all.
IPPAM_KUBE_WRITE_TIMEOUT = env_float("IPPAM_KUBE_WRITE_TIMEOUT", 8.0)
# Running inside a cluster (deploy/): register that cluster itself, through the pod's service
# account, under this name when the watcher starts (once; an existing cluster is left alone).
# The bearer token Prometheus sends to /metrics; empty: /metrics answers 403 (disabled).
IPPAM_METRICS_TOKEN = os.environ.get("IPPAM_METRICS_TOKEN", "")
IPPAM_IN_CLUSTER = env_bool("IPPAM_IN_CLUSTER", default=False)
IPPAM_IN_CLUSTER_NAME = os.environ.get("IPPAM_IN_CLUSTER_NAME", "self")
# Alert notifications (ippam.notify): an Alertmanager-compatible webhook and e-mail through
# Django's mail settings (EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, ...; DEFAULT_FROM_EMAIL).
# IPPAM_BASE_URL is how people reach the dashboard (links in notifications).
IPPAM_ALERT_WEBHOOK_URL = os.environ.get("IPPAM_ALERT_WEBHOOK_URL", "")
IPPAM_ALERT_EMAILS = env_list("IPPAM_ALERT_EMAILS", [])
IPPAM_BASE_URL = os.environ.get("IPPAM_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "ippam@localhost")
# Notifications are grouped as Alertmanager groups them (ippam.notify): by these labels, the
# first send of a group IPPAM_ALERT_GROUP_WAIT_SECONDS after its first change, later changes
# of a group at most every IPPAM_ALERT_GROUP_INTERVAL_SECONDS, at most
# IPPAM_ALERT_GROUP_MAX_ALERTS alerts a POST. A send claimed longer than
# IPPAM_ALERT_CLAIM_TIMEOUT_SECONDS ago (its worker died) is sent again.
IPPAM_ALERT_GROUP_BY = env_list("IPPAM_ALERT_GROUP_BY", ["cluster", "pool"])
IPPAM_ALERT_GROUP_WAIT_SECONDS = env_float("IPPAM_ALERT_GROUP_WAIT_SECONDS", 30.0)
IPPAM_ALERT_GROUP_INTERVAL_SECONDS = env_float("IPPAM_ALERT_GROUP_INTERVAL_SECONDS", 300.0)
IPPAM_ALERT_GROUP_MAX_ALERTS = env_int("IPPAM_ALERT_GROUP_MAX_ALERTS", 1000)
IPPAM_ALERT_CLAIM_TIMEOUT_SECONDS = env_float("IPPAM_ALERT_CLAIM_TIMEOUT_SECONDS", 120.0)
IPPAM_ALERT_FLUSH_SECONDS = env_float("IPPAM_ALERT_FLUSH_SECONDS", 30.0)

CELERY_BEAT_SCHEDULE = {
    "sync-all-clusters": {
        "task": "ippam.tasks.sync_all_clusters",
        "schedule": float(IPPAM_SYNC_INTERVAL_SECONDS),
    },
    # Pool history: downsample and expire samples (ippam.history); idempotent, so hourly is
    # plenty and a missed run only delays it.
    "pool-history-retention": {"task": "ippam.tasks.pool_history_retain", "schedule": 3600.0},
    # Due notifications, failed ones again, and claims left by a killed worker.
    "notify-flush": {"task": "ippam.tasks.notify_flush", "schedule": IPPAM_ALERT_FLUSH_SECONDS},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO").upper()},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
