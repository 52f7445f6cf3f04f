from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0013_growth_tools')]

    initial = False

    operations = [
        ops.AddField(
            model_name='InstagramAccount',
            name='messenger_profile',
            field=fields.JSONField(default=dict),
        ),
    ]
