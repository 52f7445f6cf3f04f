from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_sessions_and_password_resets')]

    initial = False

    operations = [
        ops.AddField(
            model_name='WebhookEvent',
            name='event',
            field=fields.JSONField(null=True),
        ),
    ]
