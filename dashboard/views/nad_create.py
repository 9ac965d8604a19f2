"""Creating a NAD: the form, its live preview (manifest and kubectl command), and the
fields of the chosen CNI or IPAM type."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from dashboard.forms import NADForm
from dashboard.views.common import DashboardRequest, render_fragment, render_page, role_required
from ippam import nadbuilder
from ippam.nads import NADCreateError, nad_create

TEMPLATE = "dashboard/actions/nad_form.html"


def _preview_context(form: NADForm) -> dict[str, Any]:
    manifest = form.draft_manifest()
    return {
        "form": form,
        "manifest_yaml": nadbuilder.manifest_yaml(manifest) if manifest else "",
        "kubectl": nadbuilder.kubectl_command(manifest) if manifest else "",
        "preview_valid": form.is_bound and form.manifest is not None,
    }


@require_http_methods(["GET", "POST"])
@role_required("ippam.create_nad")
def nad_new(request: DashboardRequest) -> HttpResponse:
    """GET: the form. POST: create the NAD (or, with ``preview``, only show the manifest)."""
    if request.method == "GET":
        return render_page(request, TEMPLATE, _preview_context(NADForm()), partial=None)
    form = NADForm(request.POST)
    if form.is_valid() and "preview" not in request.POST:
        assert form.spec is not None and form.manifest is not None  # clean() built them
        try:
            nad = nad_create(
                cluster=form.cleaned_data["cluster"], manifest=form.manifest, actor=request.user
            )
        except NADCreateError as exc:
            # The API server's own words, next to the field they are about; after a timeout,
            # what a re-read found (created, not created, or unknown and how to check).
            form.add_error("name" if exc.name_taken else None, exc.sentence)
        else:
            # Shown on the page the redirect lands on (the NAD's own page).
            messages.success(
                request,
                f"NAD {nad.namespace}/{nad.name} created in cluster {nad.cluster.name}. Pods "
                f"use it with the annotation k8s.v1.cni.cncf.io/networks: "
                f"{nad.namespace}/{nad.name}.",
            )
            url = reverse("nad_detail", args=[nad.pk])
            if request.htmx:
                return HttpResponseClientRedirect(url)
            return HttpResponseRedirect(url)
    return render_page(request, TEMPLATE, _preview_context(form), partial=None)


@require_POST
@role_required("ippam.create_nad")
def nad_preview(request: DashboardRequest) -> HttpResponse:
    """The manifest and kubectl command for what is typed so far, plus each field's messages."""
    form = NADForm(request.POST)
    form.is_valid()
    return render_fragment(request, TEMPLATE, "preview-response", _preview_context(form))


@require_GET
@role_required("ippam.create_nad")
def nad_fieldset(request: DashboardRequest) -> HttpResponse:
    """Only the fields of the chosen CNI type (``?cni_type=``) or IPAM type (``?ipam_type=``)."""
    form = NADForm(initial={k: v for k, v in request.GET.items() if k in ("cni_type", "ipam_type")})
    if "ipam_type" in request.GET:
        form.fields["ipam_type"].initial = request.GET["ipam_type"]
        return render_fragment(
            request, TEMPLATE, "ipam-fields", {"form": form, "only_selected": True}
        )
    form.fields["cni_type"].initial = request.GET.get("cni_type", "macvlan")
    return render_fragment(request, TEMPLATE, "cni-fields", {"form": form, "only_selected": True})
