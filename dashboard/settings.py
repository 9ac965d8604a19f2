"""ippam settings, read from the environment (see .env.example for every variable).

Defaults are the embedded ones: a SQLite file in the project folder and a broker that needs
no server (kombu's filesystem transport), so `make run` works on a bare machine. Production
sets DATABASE_URL and REDIS_URL.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from dashboard.env import database_from_url, env_bool, env_float, env_int, env_list

BASE_DIR = Path(__file__).resolve().parent.parent
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

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if not DEBUG else ["*"]
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "ippam",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

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
STATIC_ROOT = VAR_DIR / "staticfiles"

# --- Celery -------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
else:
    # No Redis: kombu's filesystem transport passes messages through a folder, so the
    # worker and beat still run as separate processes on a bare machine.
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_URL = "filesystem://"
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
CELERY_RESULT_EXPIRES = 3600
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- ippam --------------------------------------------------------------------------------
IPPAM_SYNC_INTERVAL_SECONDS = env_int("IPPAM_SYNC_INTERVAL_SECONDS", 300)
IPPAM_LEAK_GRACE_SECONDS = env_int("IPPAM_LEAK_GRACE_SECONDS", 120)
IPPAM_POOL_ALERT_THRESHOLD = env_float("IPPAM_POOL_ALERT_THRESHOLD", 0.90)
IPPAM_EVENT_RETENTION_SECONDS = env_int("IPPAM_EVENT_RETENTION_SECONDS", 24 * 3600)
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

CELERY_BEAT_SCHEDULE = {
    "sync-all-clusters": {
        "task": "ippam.tasks.sync_all_clusters",
        "schedule": float(IPPAM_SYNC_INTERVAL_SECONDS),
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO").upper()},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
