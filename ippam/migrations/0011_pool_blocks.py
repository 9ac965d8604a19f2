# Per-block allocation counts of each pool (ippam.pool_blocks), filled here from the
# allocations already synced so heat maps are right before the next sync.

import django.db.models.deletion
from django.db import migrations, models

import ippam.fields

# The same statement ippam.pool_blocks runs for a cluster, for every pool at once (a
# migration keeps its own copy: the module may change after this migration is applied).
FILL = (
    "INSERT INTO ippam_poolblock (pool_id, cluster_id, first_ip, allocated) "
    "SELECT pool_id, cluster_id, SUBSTR(ip, 1, 30) || '00', COUNT(*) FROM ippam_allocation "
    "GROUP BY pool_id, cluster_id, SUBSTR(ip, 1, 30)"
)


class Migration(migrations.Migration):
    dependencies = [
        ("ippam", "0010_lease"),
    ]

    operations = [
        migrations.CreateModel(
            name="PoolBlock",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "first_ip",
                    ippam.fields.IPAddressField(help_text="first address of the block"),
                ),
                ("allocated", models.PositiveIntegerField()),
                (
                    "cluster",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="ippam.cluster",
                    ),
                ),
                (
                    "pool",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="ippam.ippool",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("pool", "first_ip"), name="poolblock_unique")
                ],
            },
        ),
        migrations.RunSQL(FILL, migrations.RunSQL.noop),
    ]
