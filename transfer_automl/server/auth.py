"""Token authentication: ``Authorization: Bearer TOKEN`` on every API request.

Tokens are created on the command line (``transfer-automl token create USER``); the server
keeps only their SHA-256, so a copy of the database does not reveal them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request

if TYPE_CHECKING:
    from transfer_automl.server.store import ServerStore

USER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def check_user_name(user: str) -> str:
    """``user`` if it is a valid user name, else a ValueError saying what is allowed."""
    if not USER_PATTERN.match(user):
        raise ValueError(f"user name {user!r}: use 1-64 letters, digits, '_', '.', '@' or '-', "
                         "starting with a letter or digit")
    return user


def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail,
                         headers={"WWW-Authenticate": "Bearer"})


def authenticate(header: str, store: ServerStore) -> str:
    """The user of an ``Authorization: Bearer TOKEN`` header, else HTTP 401 (HTTPException)."""
    scheme, _, token = header.partition(" ")
    if not header:
        raise _unauthorised("missing token: send 'Authorization: Bearer TOKEN' "
                            "(create one with 'transfer-automl token create USER')")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorised("malformed Authorization header: expected 'Bearer TOKEN'")
    user = store.user_for_token(token.strip())
    if user is None:
        raise _unauthorised("invalid token")
    return user


def current_user(request: Request) -> str:
    """FastAPI dependency: the user of the request's bearer token, else HTTP 401."""
    return authenticate(request.headers.get("authorization", ""), request.app.state.store)
