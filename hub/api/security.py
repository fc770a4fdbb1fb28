"""The admin API's bearer-token dependency (see `auth.py` for where tokens come from)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.api.auth import Scope, allows
from hub.api.state import state_of

_bearer = HTTPBearer(auto_error=False, description="A read or operator token (SYNCHUB_API_*_TOKENS).")


def require(needed: Scope) -> Callable[..., Scope]:
    """A dependency that lets the call through only with a token of at least `needed` scope."""

    def check(request: Request,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Scope:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        granted = state_of(request).tokens.scope_of(credentials.credentials)
        if granted is None:
            raise HTTPException(401, "the token is not valid", headers={"WWW-Authenticate": "Bearer"})
        if not allows(granted, needed):
            raise HTTPException(403, f"this needs the {needed} scope; the token has {granted}")
        return granted

    return check
