from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0015_inbox')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ChatMirror',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('workspace', fields.OneToOneField('models.Workspace', source_field='workspace_id', db_constraint=True, to_field='id', related_name='chat_mirror', on_delete=OnDelete.CASCADE)),
                ('chat_link', fields.ForeignKeyField('models.ChatLink', source_field='chat_link_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'chatmirror', 'app': 'models', 'pk_attr': 'id', 'table_description': 'The one linked chat (a Telegram forum group, a Discord channel) a workspace mirrors its'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ChatThread',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('workspace', fields.ForeignKeyField('models.Workspace', source_field='workspace_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('conversation', fields.ForeignKeyField('models.Conversation', source_field='conversation_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('platform', fields.CharField(max_length=16)),
                ('chat_id', fields.CharField(max_length=64)),
                ('thread_id', fields.CharField(default='', max_length=64)),
                ('name', fields.CharField(default='', max_length=128)),
                ('claimed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'chatthread', 'app': 'models', 'unique_together': (('conversation', 'platform', 'chat_id'),), 'indexes': [Index(fields=['platform', 'chat_id', 'thread_id'])], 'pk_attr': 'id', 'table_description': "A conversation's topic or thread in a mirror chat."},
            bases=['Model'],
        ),
    ]
