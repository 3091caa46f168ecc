"""answer generations: a per-workspace counter bumped in the transaction of any update or delete of
answers, so that the API's in-memory columns of answers know to load them again

Create Date: 2026-12-02 01:00:00
"""

import sqlalchemy as sa
from alembic import op

from shared.migration_ops import workspace_id

revision = "d4f1a9c3e7b2"
down_revision = "c81d5e0a7b24"

BUMP = """
CREATE FUNCTION scoring.bump_answer_generations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    INSERT INTO scoring.answer_generations (workspace_id, generation)
    SELECT DISTINCT workspace_id, 1 FROM scoring.surveys
    ON CONFLICT (workspace_id) DO UPDATE SET generation = scoring.answer_generations.generation + 1;
  ELSE
    INSERT INTO scoring.answer_generations (workspace_id, generation)
    SELECT DISTINCT s.workspace_id, 1 FROM changed c JOIN scoring.surveys s ON s.key = c.survey_key
    ON CONFLICT (workspace_id) DO UPDATE SET generation = scoring.answer_generations.generation + 1;
  END IF;
  RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.create_table(
        "answer_generations",
        workspace_id(),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_answer_generations")),
        schema="scoring",
    )
    op.execute(BUMP)
    op.execute(
        "CREATE TRIGGER answers_updated AFTER UPDATE ON scoring.answers REFERENCING OLD TABLE AS changed "
        "FOR EACH STATEMENT EXECUTE FUNCTION scoring.bump_answer_generations()"
    )
    op.execute(
        "CREATE TRIGGER answers_deleted AFTER DELETE ON scoring.answers REFERENCING OLD TABLE AS changed "
        "FOR EACH STATEMENT EXECUTE FUNCTION scoring.bump_answer_generations()"
    )
    op.execute(
        "CREATE TRIGGER answers_truncated AFTER TRUNCATE ON scoring.answers "
        "FOR EACH STATEMENT EXECUTE FUNCTION scoring.bump_answer_generations()"
    )


def downgrade() -> None:
    for name in ("answers_updated", "answers_deleted", "answers_truncated"):
        op.execute(f"DROP TRIGGER {name} ON scoring.answers")
    op.execute("DROP FUNCTION scoring.bump_answer_generations()")
    op.drop_table("answer_generations", schema="scoring")
