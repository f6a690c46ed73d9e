"""State calling rules: each chunk's US state and holidays, and the imports' count of numbers over a state's cap.

- `chunks.us_state` (the members' US state, "" for none) and `chunks.holidays` (days without calls: "US-LA" and/or ISO
  dates); chunks planned before keep "" for both, as they were planned without state rules;
- `imports.state_capped` and `import_files.state_capped`: accepted numbers not planned because their state's cap on
  calls per 24 hours was reached (0 for older imports).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = {
    "chunks": [("us_state", sa.String(), "''"), ("holidays", sa.String(), "''")],
    "imports": [("state_capped", sa.Integer(), "0")],
    "import_files": [("state_capped", sa.Integer(), "0")],
}


def upgrade() -> None:
    catalog = sa.inspect(op.get_bind())
    for table, columns in COLUMNS.items():
        present = {column["name"] for column in catalog.get_columns(table)}
        for name, kind, default in columns:
            if name not in present:
                op.add_column(table, sa.Column(name, kind, nullable=False, server_default=sa.text(default)))


def downgrade() -> None:
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for name, _, _ in columns:
                batch.drop_column(name)
