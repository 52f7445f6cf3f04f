from tortoise import migrations
from tortoise.migrations import operations as ops
from core.db.models import Trigger
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0012_team_chatops')]

    initial = False

    operations = [
        ops.CreateModel(
            name='TrackedLink',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('workspace', fields.ForeignKeyField('models.Workspace', source_field='workspace_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('account', fields.ForeignKeyField('models.InstagramAccount', source_field='account_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('rule', fields.ForeignKeyField('models.AutomationRule', source_field='rule_id', db_constraint=True, to_field='id', related_name='tracked_links', on_delete=OnDelete.CASCADE)),
                ('conversation', fields.ForeignKeyField('models.Conversation', source_field='conversation_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('code', fields.CharField(unique=True, max_length=32)),
                ('key', fields.CharField(unique=True, max_length=64)),
                ('step', fields.CharField(default='', max_length=64)),
                ('variant', fields.CharField(default='', max_length=16)),
                ('igsid', fields.CharField(default='', max_length=64)),
                ('target', fields.TextField(unique=False)),
                ('clicks', fields.IntField(default=0)),
                ('first_clicked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_clicked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'trackedlink', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A link a rule sent one person, rewritten to ``/l/<code>``: its clicks are counted.'},
            bases=['Model'],
        ),
        ops.AlterField(
            model_name='AutomationRule',
            name='trigger',
            field=fields.CharEnumField(description='COMMENT: comment\nDM: dm\nSTORY_REPLY: story_reply\nSTORY_MENTION: story_mention\nPOSTBACK: postback\nREF_LINK: ref_link', enum_type=Trigger, max_length=16),
        ),
        ops.AddField(
            model_name='Message',
            name='read_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Message',
            name='rule_id',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='RuleStats',
            name='total_dms_opened',
            field=fields.IntField(default=0, db_default=0),
        ),
    ]
