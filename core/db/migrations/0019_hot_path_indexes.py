from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0018_comment_moderation')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Conversation',
            index=Index(fields=['account_id', 'last_message_at']),
        ),
        ops.AddIndex(
            model_name='DomainEvent',
            index=Index(fields=['delivered_at', 'created_at']),
        ),
        ops.AddIndex(
            model_name='DomainEvent',
            index=Index(fields=['workspace_id', 'id']),
        ),
        ops.AddIndex(
            model_name='FollowUp',
            index=Index(fields=['conversation_id', 'status']),
        ),
        ops.AddIndex(
            model_name='Message',
            index=Index(fields=['conversation_id', 'created_at']),
        ),
        ops.AddIndex(
            model_name='OutboundAction',
            index=Index(fields=['status', 'created_at']),
        ),
        ops.AddIndex(
            model_name='OutboundAction',
            index=Index(fields=['account_id', 'created_at']),
        ),
        ops.AddIndex(
            model_name='WebhookEvent',
            index=Index(fields=['status', 'received_at']),
        ),
        ops.AddIndex(
            model_name='WebhookEvent',
            index=Index(fields=['account_ig_id', 'received_at']),
        ),
    ]
