"""What the pages offer to reclaim: the plan's own rule, for a template."""

from __future__ import annotations

from django import template

from ippam.leaks.reclaim.plan import finding_reclaim_offered
from ippam.models import Finding

register = template.Library()


@register.filter
def reclaim_offered(finding: Finding) -> bool:
    """Whether the finding's row offers a Reclaim button (see finding_reclaim_offered)."""
    return finding_reclaim_offered(finding)
