"""The reference frontend (seed resources ui-w8p2, ui-v3n6, ui-a4y1), served by the app itself.

``web/`` holds plain HTML, CSS and JavaScript modules (no build step). In development
only, ``POST /dev/sign-in`` mints a token for a typed user id so the page works out of
the box; in production that route does not exist and the host application provides
the token (see the README, "The reference frontend").
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from app.auth import MAX_USER_ID_LENGTH, TokenCodec

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
DEV_ROLES = frozenset({"analyst", "admin"})
DEV_TOKEN_TTL = timedelta(hours=8)
LOOPBACK_CLIENTS = frozenset({"127.0.0.1", "::1"})
_USER_ID = re.compile(rf"[A-Za-z0-9_.@:\-]{{1,{MAX_USER_ID_LENGTH}}}")


def web_routes(*, tokens: TokenCodec, development: bool) -> list[BaseRoute]:
    async def index(_: Request) -> Response:
        return FileResponse(WEB_DIR / "index.html")

    async def dashboard(_: Request) -> Response:
        return FileResponse(WEB_DIR / "dashboard.html")

    routes: list[BaseRoute] = [
        Route("/", index),
        Route("/dashboard", dashboard),
        Mount("/static", StaticFiles(directory=WEB_DIR), name="static"),
    ]
    if development:

        async def dev_sign_in(request: Request) -> Response:
            # Development servers are sometimes bound to 0.0.0.0: only a browser on this
            # machine may mint tokens, or anyone on the network could sign in as admin.
            client = request.client.host if request.client else ""
            if client not in LOOPBACK_CLIENTS:
                return JSONResponse(
                    {"error": "development sign-in is only offered to this machine"},
                    status_code=403,
                )
            try:
                body = await request.json()
            except ValueError:
                body = None
            user_id = body.get("userId") if isinstance(body, dict) else None
            roles = body.get("roles", []) if isinstance(body, dict) else []
            if not isinstance(user_id, str) or not _USER_ID.fullmatch(user_id):
                return JSONResponse(
                    {"error": "userId must be 1-128 letters, digits or _.@:-"}, status_code=400
                )
            if not isinstance(roles, list) or not set(roles) <= DEV_ROLES:
                return JSONResponse(
                    {"error": f"roles must be a subset of {sorted(DEV_ROLES)}"}, status_code=400
                )
            token = tokens.mint(user_id, roles=roles, ttl=DEV_TOKEN_TTL)
            return JSONResponse({"token": token, "userId": user_id, "roles": sorted(roles)})

        routes.append(Route("/dev/sign-in", dev_sign_in, methods=["POST"]))
    return routes
