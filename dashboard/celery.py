"""The Celery app. Tasks live in ippam.tasks; settings come from Django's CELERY_* names."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

app = Celery("ippam")
app.config_from_object("django.conf:settings", namespace="CELERY")
# ippam.tasks, and the leak tasks next to the code they run (ippam.leaks.tasks).
app.autodiscover_tasks(["ippam", "ippam.leaks"])
