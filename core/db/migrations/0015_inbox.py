from tortoise import migrations
from tortoise.migrations import operations as ops
from core.db.conversations import ConversationStatus
from tortoise.fields.base import OnDelete
from tortoise import fields

# Conversations that predate the inbox are listed by their last message, and read as
# 'waiting' when the person wrote last.
LAST_MESSAGE_OF_EACH_CONVERSATION = """
UPDATE conversation SET
  last_message_at = (SELECT MAX(m.created_at) FROM message m WHERE m.conversation_id = conversation.id),
  last_message_text = COALESCE((SELECT m.text FROM message m WHERE m.conversation_id = conversation.id
                                ORDER BY m.created_at DESC, m.id DESC LIMIT 1), ''),
  status = CASE WHEN (SELECT m.direction FROM message m WHERE m.conversation_id = conversation.id
                      ORDER BY m.created_at DESC, m.id DESC LIMIT 1) = 'in'
           THEN 'waiting' ELSE 'open' END
"""


class Migration(migrations.Migration):
    dependencies = [('models', '0014_messenger_profile')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ConversationNote',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('conversation', fields.ForeignKeyField('models.Conversation', source_field='conversation_id', db_constraint=True, to_field='id', related_name='notes', on_delete=OnDelete.CASCADE)),
                ('author', fields.ForeignKeyField('models.User', source_field='author_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('text', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'conversationnote', 'app': 'models', 'pk_attr': 'id', 'table_description': "A teammate's internal note on a conversation (never sent to the person)."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Conversation',
            name='assignee',
            field=fields.ForeignKeyField('models.User', source_field='assignee_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL),
        ),
        ops.AddField(
            model_name='Conversation',
            name='labels',
            field=fields.CharField(default='', db_default='', max_length=512),
        ),
        ops.AddField(
            model_name='Conversation',
            name='last_message_at',
            field=fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Conversation',
            name='last_message_text',
            field=fields.TextField(default='', db_default='', unique=False),
        ),
        ops.AddField(
            model_name='Conversation',
            name='paused_by',
            field=fields.ForeignKeyField('models.User', source_field='paused_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL),
        ),
        ops.AddField(
            model_name='Conversation',
            name='paused_until',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Conversation',
            name='status',
            field=fields.CharEnumField(default=ConversationStatus.OPEN, description='OPEN: open\nWAITING: waiting\nDONE: done', db_default='open', enum_type=ConversationStatus, max_length=16),
        ),
        ops.AddField(
            model_name='Message',
            name='author',
            field=fields.ForeignKeyField('models.User', source_field='author_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL),
        ),
        ops.AddField(
            model_name='Message',
            name='media_url',
            field=fields.TextField(default='', db_default='', unique=False),
        ),
        ops.AddField(
            model_name='Message',
            name='source',
            field=fields.CharField(default='', db_default='', max_length=16),
        ),
        ops.RunSQL(LAST_MESSAGE_OF_EACH_CONVERSATION),
    ]
