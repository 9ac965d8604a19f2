"""Acknowledging alerts: which open alerts, and one note for all of them."""

from __future__ import annotations

from django import forms

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
