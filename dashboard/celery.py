"""The Celery app. Tasks live in ippam.tasks; settings come from Django's CELERY_* names."""

import os
import warnings

from celery import Celery
from celery.exceptions import SecurityWarning
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

# Celery warns when a worker runs as root. In development (containers, CI) root is the norm,
# and accepting only JSON is what keeps it safe: Celery refuses to start as root with pickle.
if settings.DEBUG:
    warnings.filterwarnings("ignore", category=SecurityWarning)

app = Celery("ippam")
app.config_from_object("django.conf:settings", namespace="CELERY")
# ippam.tasks, and the leak tasks next to the code they run (ippam.leaks.tasks).
app.autodiscover_tasks(["ippam", "ippam.leaks"])
