from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0017_followups_variants')]

    initial = False

    operations = [
        ops.AddField(
            model_name='InstagramAccount',
            name='comment_alerts',
            field=fields.BooleanField(default=False, db_default=False),
        ),
    ]
