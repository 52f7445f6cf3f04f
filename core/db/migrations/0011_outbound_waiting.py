from tortoise import migrations
from tortoise.migrations import operations as ops
from core.db.models import OutboundStatus
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0010_zones_and_followers')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='OutboundAction',
            name='status',
            field=fields.CharEnumField(default=OutboundStatus.PENDING, description='PENDING: pending\nSENT: sent\nSKIPPED: skipped\nFAILED: failed\nUNCONFIRMED: unconfirmed\nWAITING: waiting\nEXPIRED: expired', enum_type=OutboundStatus, max_length=16),
        ),
    ]
