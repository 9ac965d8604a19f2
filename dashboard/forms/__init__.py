"""Forms of the acting pages, one module each: NAD creation, acknowledgement, reclamation.

Forms validate and translate input into typed values; they never write. The list filters
are django-filter FilterSets in ippam/filters.py, shared with the API.
"""

from __future__ import annotations

from dashboard.forms.alerts import AcknowledgeForm
from dashboard.forms.nad import NADForm, nad_namespaces
from dashboard.forms.reclaim import ReclaimPlanForm

__all__ = ["AcknowledgeForm", "NADForm", "ReclaimPlanForm", "nad_namespaces"]
