from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [('models', '0008_integrations')]

    initial = False

    operations = [
        ops.AddField(
            model_name='WebhookEvent',
            name='source',
            field=fields.CharField(default='webhook', db_default='webhook', max_length=8),
        ),
    ]
