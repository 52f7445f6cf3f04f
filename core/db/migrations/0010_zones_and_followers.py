from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [('models', '0009_event_source')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Conversation',
            name='profile_name',
            field=fields.CharField(default='', db_default='', max_length=255),
        ),
        ops.AddField(
            model_name='Conversation',
            name='profile_pic',
            field=fields.TextField(default='', db_default=''),
        ),
        ops.AddField(
            model_name='Conversation',
            name='follower_count',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Conversation',
            name='is_verified_user',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='Conversation',
            name='is_user_follow_business',
            field=fields.BooleanField(null=True),
        ),
        ops.AddField(
            model_name='Conversation',
            name='profile_fetched_at',
            field=fields.DatetimeField(null=True),
        ),
        ops.AddField(
            model_name='Conversation',
            name='profile_failed_at',
            field=fields.DatetimeField(null=True),
        ),
        ops.AddField(
            model_name='User',
            name='timezone',
            field=fields.CharField(max_length=64, null=True),
        ),
    ]
