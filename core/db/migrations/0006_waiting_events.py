from tortoise import migrations
from tortoise.migrations import operations as ops
from core.db.models import EventStatus
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0005_outbound_unconfirmed')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='WebhookEvent',
            name='status',
            field=fields.CharEnumField(default=EventStatus.PENDING, description='PENDING: pending\nPROCESSING: processing\nDONE: done\nIGNORED: ignored\nFAILED: failed\nWAITING: waiting\nEXPIRED: expired', enum_type=EventStatus, max_length=16),
        ),
    ]
