"""Accounts and API tokens: roles reader < publisher < admin; only sha256 of a token is stored.

A token is shown once, when it is created. A leaked database therefore holds no usable
credential: the hash of a 256-bit random token cannot be inverted or guessed.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from synthmed.serve import db
from synthmed.serve.rules import Refusal

ROLES = ("reader", "publisher", "admin")
TOKEN_PREFIX = "smt_"


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str

    def can(self, role: str) -> bool:
        """At least ``role`` (admin can do what a publisher can, who can do what a reader can)."""
        return ROLES.index(self.role) >= ROLES.index(role)


def now() -> datetime:
    return datetime.now(timezone.utc)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(engine: sa.Engine, name: str, role: str) -> str:
    """A new token for user ``name`` (created with ``role`` if new; an existing user keeps
    their account and gets the new role). Returns the token; only its hash is kept."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        row = conn.execute(sa.select(db.users.c.id).where(db.users.c.name == name)).first()
        if row is None:
            user_id = conn.execute(
                db.users.insert().values(name=name, role=role, created_at=now())
            ).inserted_primary_key[0]
        else:
            user_id = row.id
            conn.execute(db.users.update().where(db.users.c.id == user_id).values(role=role))
        conn.execute(
            db.tokens.insert().values(
                user_id=user_id, token_sha256=hash_token(token), created_at=now()
            )
        )
    return token


def authenticate(engine: sa.Engine, token: str | None) -> User | None:
    """The user a token belongs to; None without a token.

    Raises:
        Refusal: ``bad_token`` for a token that is unknown or revoked.
    """
    if not token:
        return None
    query = (
        sa.select(db.users.c.id, db.users.c.name, db.users.c.role, db.tokens.c.revoked_at)
        .join(db.tokens, db.tokens.c.user_id == db.users.c.id)
        .where(db.tokens.c.token_sha256 == hash_token(token))
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        raise Refusal("bad_token", "the API token is unknown")
    if row.revoked_at is not None:
        when = row.revoked_at.strftime("%Y-%m-%d %H:%M UTC")
        raise Refusal(
            "bad_token", f"the API token was revoked on {when}; ask an admin for a new one"
        )
    return User(row.id, row.name, row.role)


def revoke_tokens(engine: sa.Engine, name: str | None = None, token: str | None = None) -> int:
    """Revoke one token, or every live token of account ``name``; returns how many.

    The rows stay (revoked_at set), so a revoked token is refused with its own reason rather
    than looking unknown.
    """
    if (name is None) == (token is None):
        raise ValueError("give exactly one of name or token")
    live = db.tokens.c.revoked_at.is_(None)
    if token is not None:
        which = db.tokens.c.token_sha256 == hash_token(token)
    else:
        users = sa.select(db.users.c.id).where(db.users.c.name == name).scalar_subquery()
        which = db.tokens.c.user_id == users
    with engine.begin() as conn:
        result = conn.execute(db.tokens.update().where(which, live).values(revoked_at=now()))
    return result.rowcount


def require(user: User | None, role: str, action: str) -> User:
    """``user`` when at least ``role``; refuses anonymous (bad_token) and lower roles."""
    if user is None:
        raise Refusal("bad_token", f"{action} needs an API token (Authorization: Bearer ...)")
    if not user.can(role):
        raise Refusal("wrong_role", f"{action} needs the {role} role; '{user.name}' is {user.role}")
    return user
