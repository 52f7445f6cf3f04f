from tortoise import migrations
from tortoise.migrations import operations as ops
from core.db.models import LinkCodeKind
from core.domain.posts import Status
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0011_outbound_waiting')]

    initial = False

    operations = [
        ops.AddField(
            model_name='LinkCode',
            name='kind',
            field=fields.CharEnumField(default=LinkCodeKind.CHAT, description='CHAT: chat\nPERSON: person', db_default='chat', enum_type=LinkCodeKind, max_length=16),
        ),
        ops.AlterField(
            model_name='Post',
            name='status',
            field=fields.CharEnumField(default=Status.DRAFT, db_index=True, description='DRAFT: draft\nSCHEDULED: scheduled\nPUBLISHING: publishing\nRETRYING: retrying\nPUBLISHED: published\nFAILED: failed\nCANCELLED: cancelled\nPENDING_APPROVAL: pending_approval', enum_type=Status, max_length=16),
        ),
        ops.AddField(
            model_name='Workspace',
            name='chat_readers_unlinked',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='Workspace',
            name='editor_posts_need_approval',
            field=fields.BooleanField(default=False, db_default=False),
        ),
    ]
