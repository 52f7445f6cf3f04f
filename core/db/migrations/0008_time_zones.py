from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [('models', '0007_instance_admin')]

    initial = False

    operations = [
        ops.AddField(
            model_name='User',
            name='timezone',
            field=fields.CharField(max_length=64, null=True),
        ),
    ]
