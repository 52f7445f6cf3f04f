from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

# An install that predates instance admins makes its first owner one, so someone can still
# change the Meta app.
FIRST_OWNER_IS_INSTANCE_ADMIN = """
UPDATE "user" SET is_instance_admin = TRUE
WHERE id = (SELECT MIN(user_id) FROM membership WHERE role = 'owner')
"""


class Migration(migrations.Migration):
    dependencies = [('models', '0006_waiting_events')]

    initial = False

    operations = [
        ops.AddField(
            model_name='User',
            name='is_instance_admin',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.RunSQL(FIRST_OWNER_IS_INSTANCE_ADMIN),
    ]
