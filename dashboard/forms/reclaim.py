"""What to reclaim: findings, the findings behind alerts, or a whole pool's leaks."""

from __future__ import annotations

from typing import Any, cast

from django import forms

from ippam.models import Alert, Cluster


class ReclaimPlanForm(forms.Form):
    """What to reclaim: findings, the findings behind alerts, or a whole pool's leaks."""

    cluster = forms.ModelChoiceField(required=False, queryset=Cluster.objects.all())
    finding = forms.TypedMultipleChoiceField(required=False, coerce=int, choices=())
    alert = forms.TypedMultipleChoiceField(required=False, coerce=int, choices=())
    pool = forms.IntegerField(required=False)
    include_suspect = forms.BooleanField(required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Ids are checked against the database in clean(); choices would load every row.
        for name in ("finding", "alert"):
            field = cast(forms.TypedMultipleChoiceField, self.fields[name])
            # A per-instance override of the method; mypy only allows replacing it on the class.
            field.valid_value = lambda value: str(value).isdigit()  # type: ignore[method-assign]

    def clean(self) -> dict[str, Any]:
        from ippam.models import Finding, IPPool

        super().clean()  # returns self.cleaned_data, which django-stubs types as optional
        data = self.cleaned_data
        finding_ids = set(data.get("finding") or [])
        alert_ids = data.get("alert") or []
        if alert_ids:
            finding_ids.update(
                Alert.objects.filter(pk__in=alert_ids, finding__isnull=False).values_list(
                    "finding_id", flat=True
                )
            )
        pool = None
        if data.get("pool"):
            pool = IPPool.objects.select_related("cluster").filter(pk=data["pool"]).first()
            if pool is None:
                raise forms.ValidationError(
                    "That IPPool is no longer known; re-sync and try again."
                )
        if not finding_ids and pool is None:
            raise forms.ValidationError(
                "Choose findings, alerts with findings, or a pool to reclaim from."
            )
        clusters = set(
            Finding.objects.filter(pk__in=finding_ids).values_list("cluster_id", flat=True)
        )
        if pool is not None:
            clusters.add(pool.cluster_id)
        if finding_ids and not Finding.objects.filter(pk__in=finding_ids).exists():
            raise forms.ValidationError(
                "None of the chosen findings exists any more: they were resolved by a sync."
            )
        if len(clusters) > 1:
            raise forms.ValidationError(
                "Reclaim one cluster at a time: the selection spans several clusters."
            )
        data["finding_ids"] = sorted(finding_ids) or None
        data["pool_obj"] = pool
        cluster = data.get("cluster")
        if clusters:
            cluster = Cluster.objects.get(pk=next(iter(clusters)))
        data["cluster"] = cluster
        return data
