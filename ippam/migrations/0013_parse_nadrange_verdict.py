"""NADRange.verdict: why whereabouts fails every allocation from a range.

Existing ranges get theirs from their NAD's stored config, read as the sync reads it, so
a page shows the verdict before the next sync rewrites the NADs.
"""

from django.db import migrations, models


def fill_verdicts(apps, schema_editor):
    from ippam.cniconfig import parse_cni_config
    from ippam.whereabouts import parse_whereabouts_ipam

    NAD = apps.get_model("ippam", "NetworkAttachmentDefinition")
    NADRange = apps.get_model("ippam", "NADRange")
    nads = NAD.objects.filter(ipam_type="whereabouts").only("id", "config_raw")
    for nad in nads.iterator(chunk_size=500):
        cni = parse_cni_config(nad.config_raw or "")
        if cni.ipam is None:
            continue
        config = parse_whereabouts_ipam(cni.ipam)
        for position, r in enumerate(config.ranges):
            if r.verdict:
                # The same range at the same place: a row the older reading placed
                # otherwise is left to the next sync, which rewrites every NAD's ranges.
                NADRange.objects.filter(nad_id=nad.id, position=position, range=r.cidr).update(
                    verdict=r.verdict, usable=0
                )


class Migration(migrations.Migration):
    dependencies = [("ippam", "0012_sync_without_fk_checks")]

    operations = [
        migrations.AddField(
            model_name="nadrange",
            name="verdict",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.RunPython(fill_verdicts, migrations.RunPython.noop),
    ]
