from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from core.db.follow_ups import FollowUpStatus
from core.db.models import Trigger
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0016_chat_mirror')]

    initial = False

    operations = [
        ops.CreateModel(
            name='FollowUp',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('account', fields.ForeignKeyField('models.InstagramAccount', source_field='account_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('rule', fields.ForeignKeyField('models.AutomationRule', source_field='rule_id', db_constraint=True, to_field='id', related_name='follow_ups', on_delete=OnDelete.CASCADE)),
                ('conversation', fields.ForeignKeyField('models.Conversation', source_field='conversation_id', db_constraint=True, to_field='id', related_name='follow_ups', on_delete=OnDelete.CASCADE)),
                ('dedupe_key', fields.CharField(unique=True, max_length=255)),
                ('message', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('variant', fields.CharField(default='', max_length=16)),
                ('status', fields.CharEnumField(default=FollowUpStatus.PENDING, description='PENDING: pending\nSENT: sent\nCANCELLED: cancelled\nEXPIRED: expired', enum_type=FollowUpStatus, max_length=16)),
                ('reason', fields.TextField(default='', unique=False)),
                ('planned_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('due_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('window_ends_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('outbound_action_id', fields.IntField(null=True)),
                ('done_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'followup', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One follow-up of one rule to one person, due at its time, with why it ended as it did.'},
            bases=['Model'],
        ),
        ops.AlterField(
            model_name='AutomationRule',
            name='trigger',
            field=fields.CharEnumField(description='COMMENT: comment\nDM: dm\nSTORY_REPLY: story_reply\nSTORY_MENTION: story_mention\nPOSTBACK: postback\nREF_LINK: ref_link\nLIVE_COMMENT: live_comment', enum_type=Trigger, max_length=16),
        ),
        ops.AddField(
            model_name='Message',
            name='variant',
            field=fields.CharField(default='', db_default='', max_length=16),
        ),
        ops.AddField(
            model_name='OutboundAction',
            name='conversation_id',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='OutboundAction',
            name='rule_id',
            field=fields.IntField(null=True, db_index=True),
        ),
        ops.AddField(
            model_name='OutboundAction',
            name='step',
            field=fields.CharField(default='', db_default='', max_length=16),
        ),
        ops.AddField(
            model_name='OutboundAction',
            name='variant',
            field=fields.CharField(default='', db_default='', max_length=16),
        ),
    ]
