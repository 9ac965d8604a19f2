"""What browsers ask for on their own, before anyone logs in."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static


@login_not_required
def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    """/favicon.ico (a bookmark, a page without <link rel=icon>): the SVG icon. Resolved per
    request: with the manifest storage the hashed name exists only after collectstatic."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))
