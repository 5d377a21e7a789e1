"""Users of the bench's own: a token each, and everything they made removed afterwards."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from runstats_app.auth import Role, create_token
from runstats_app.models import ApiToken, PipelineRun, StatusChange


def bearer(engine: Engine, user: str, role: Role) -> dict[str, str]:
    """The Authorization header of a new token for `user` with `role`."""
    with Session(engine) as session:
        token = create_token(session, user, role)
        session.commit()
    return {"Authorization": f"Bearer {token}"}


def remove_users(engine: Engine, users: Sequence[str]) -> None:
    """The runs `users` created (with their status history) and their tokens."""
    with Session(engine) as session:
        ids = select(PipelineRun.id).where(PipelineRun.created_by.in_(users))
        session.execute(delete(StatusChange).where(StatusChange.run_id.in_(ids)))
        session.execute(delete(PipelineRun).where(PipelineRun.created_by.in_(users)))
        session.execute(delete(ApiToken).where(ApiToken.user_name.in_(users)))
        session.commit()
