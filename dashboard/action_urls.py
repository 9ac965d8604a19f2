"""Routes for the mutating views (NAD creation, acknowledgement, reclamation, audit log)."""

from django.urls import path

urlpatterns: list = []
