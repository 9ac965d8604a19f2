"""Acknowledging alerts: which open alerts, and one note for all of them."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from ippam.models import Alert


class AcknowledgeForm(forms.Form):
    alert = forms.ModelMultipleChoiceField(
        queryset=Alert.objects.filter(state=Alert.State.OPEN),
        error_messages={
            "required": "Select at least one open alert to acknowledge.",
            "invalid_choice": "Alert %(value)s is not open any more (acknowledged or resolved meanwhile).",
        },
    )
    note = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.TextInput(attrs={"placeholder": "optional note, e.g. ticket OPS-123"}),
    )


class SnoozeForm(forms.Form):
    """No notifications for the alert until this time; empty wakes it now."""

    until = forms.DateTimeField(
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        error_messages={"invalid": "Give the time as YYYY-MM-DD HH:MM (or leave it empty)."},
    )


class AssignForm(forms.Form):
    """Who looks after the alert; empty: nobody."""

    assignee = forms.ModelChoiceField(
        required=False,
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        error_messages={"invalid_choice": "That user does not exist or is not active any more."},
    )
