"""The HTTP API's tokens (``webhook_api_tokens``): each by its name, with the SHA-256 of the
whole token and its scopes.

The token itself is never stored: whoever holds it is told it once, when it is made, and a
request's token is found by its hash (:func:`by_hash`). The scopes are stored as the caller gives
them, comma-separated (:mod:`dispatcher.ops.api_tokens` gives them in one fixed order). Two
tokens cannot share a name: the table's key decides between two made at once. Revoking a token
deletes its row, so it stops working as soon as the API reads the tokens again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..errors import DispatcherError
from .engine import reading
from .schema import API_TOKENS

SEPARATOR = ","


class ApiTokenExists(DispatcherError, ValueError):
    """A token of that name exists already."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"an API token named {name!r} exists already: revoke it first or choose another name"
        )


@dataclass(frozen=True)
class ApiToken:
    """A token as stored, without its hash: its name, scopes, when it was made and last used
    (None: never)."""

    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None


def create(engine: Engine, name: str, token_hash: str, scopes: Sequence[str], now: datetime) -> ApiToken:
    """Stores a new token named ``name`` whose token hashes to ``token_hash``.

    Raises:
        ApiTokenExists: one of that name is stored (the insert decides: of two made at once
            under one name, one is stored).
    """
    try:
        with engine.begin() as conn:
            conn.execute(
                API_TOKENS.insert().values(
                    name=name,
                    token_hash=token_hash,
                    scopes=SEPARATOR.join(scopes),
                    created_at=now,
                    last_used_at=None,
                )
            )
    except sa.exc.IntegrityError:
        if named(engine, name) is None:
            raise  # not the name: the same token hash twice, which 256 random bits never make
        raise ApiTokenExists(name) from None
    return ApiToken(name, tuple(scopes), now, None)


def revoke(engine: Engine, name: str) -> bool:
    """Deletes the token named ``name``; False when there was none."""
    with engine.begin() as conn:
        result = conn.execute(API_TOKENS.delete().where(API_TOKENS.c.name == name))
    return bool(result.rowcount)


def _token(row: sa.RowMapping) -> ApiToken:
    scopes = tuple(s for s in str(row["scopes"]).split(SEPARATOR) if s)
    return ApiToken(row["name"], scopes, row["created_at"], row["last_used_at"])


def named(engine: Engine, name: str) -> ApiToken | None:
    """The token named ``name``; None when there is none."""
    query = sa.select(API_TOKENS).where(API_TOKENS.c.name == name)
    with reading(engine) as conn:
        row = conn.execute(query).mappings().first()
    return _token(row) if row is not None else None


def listed(engine: Engine) -> list[ApiToken]:
    """Every token, by name."""
    query = sa.select(API_TOKENS).order_by(API_TOKENS.c.name)
    with reading(engine) as conn:
        return [_token(row) for row in conn.execute(query).mappings()]


def by_hash(engine: Engine) -> dict[str, ApiToken]:
    """Every token, keyed by the hash of its token (one query)."""
    with reading(engine) as conn:
        return {row["token_hash"]: _token(row) for row in conn.execute(sa.select(API_TOKENS)).mappings()}


def touch(engine: Engine, names: Iterable[str], now: datetime) -> int:
    """Sets ``last_used_at`` of the tokens named to ``now`` (a name no longer stored is skipped);
    returns how many were set."""
    chosen = sorted(set(names))
    if not chosen:
        return 0
    with engine.begin() as conn:
        result = conn.execute(
            API_TOKENS.update().where(API_TOKENS.c.name.in_(chosen)).values(last_used_at=now)
        )
    return int(result.rowcount or 0)
