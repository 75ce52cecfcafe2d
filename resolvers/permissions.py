"""Who may read what: top-level GraphQL errors with Apollo-style ``extensions.code``."""

from __future__ import annotations

from enum import StrEnum

from graphql import GraphQLError

from app.auth import Principal
from app.errors import AuthenticationFailed
from resolvers.context import Info


class Role(StrEnum):
    ANALYST = "analyst"
    ADMIN = "admin"


#: Roles a role implies: an admin can do everything an analyst can.
_IMPLIES: dict[Role, set[Role]] = {Role.ADMIN: {Role.ADMIN, Role.ANALYST}}


def signed_in(info: Info) -> Principal:
    try:
        return info.context.authenticate()
    except AuthenticationFailed as exc:
        raise GraphQLError(exc.message, extensions={"code": "UNAUTHENTICATED"}) from None


def require_role(info: Info, role: Role) -> Principal:
    principal = signed_in(info)
    granted = set().union(
        *(
            _IMPLIES.get(Role(r), {Role(r)})
            for r in principal.roles
            if r in Role.__members__.values()
        )
    )
    if role not in granted:
        raise GraphQLError(f"This needs the '{role.value}' role.", extensions={"code": "FORBIDDEN"})
    return principal
