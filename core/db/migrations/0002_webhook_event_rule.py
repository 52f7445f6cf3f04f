from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.AddField(
            model_name='WebhookEvent',
            name='rule',
            field=fields.ForeignKeyField('models.AutomationRule', source_field='rule_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL),
        ),
        ops.AddField(
            model_name='WebhookEvent',
            name='rule_name',
            field=fields.CharField(null=True, max_length=120),
        ),
    ]
