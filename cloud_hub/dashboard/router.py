"""Serve the dashboard's static files at ``/dashboard/`` under a strict Content-Security-Policy.

The pages are plain HTML, JavaScript modules and CSS with no build step; they reach the hub
only through the public API (``/api/v1``) with the API key the user types in. Only the files
in ``static/`` with a known suffix are served, each with its own content type; the policy
forbids inline scripts and styles and any origin but the hub's own.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import RedirectResponse

STATIC_DIR = Path(__file__).parent / "static"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
_FILE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*\.(?:html|js|css)$")

# Images come from the API as blobs (the key goes in a header, never in a URL), hence blob:.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Revalidate every time (cheap: the ETag answers 304) so a hub upgrade shows at once.
    "Cache-Control": "no-cache",
}

router = APIRouter(prefix="/dashboard", include_in_schema=False)


def static_file(name: str, if_none_match: str | None = None) -> Response:
    """``static/<name>`` with its content type, the security headers and a sha256 ETag (304
    when ``if_none_match`` already names it); 404 for any other name."""
    path = STATIC_DIR / name
    if not _FILE_NAME.match(name) or not path.is_file():
        raise HTTPException(404, f"no dashboard file {name!r}")
    data = path.read_bytes()
    etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
    headers = {**SECURITY_HEADERS, "ETag": etag}
    if if_none_match == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=CONTENT_TYPES[path.suffix], headers=headers)


@router.get("")
def dashboard_root() -> RedirectResponse:
    """``/dashboard`` -> ``/dashboard/`` (the pages load their files by relative URL)."""
    return RedirectResponse("dashboard/", status_code=308)


@router.get("/")
def dashboard_index(request: Request) -> Response:
    """The dashboard's single page."""
    return static_file("index.html", request.headers.get("if-none-match"))


@router.get("/{name}")
def dashboard_file(name: str, request: Request) -> Response:
    """One of the dashboard's scripts or style sheets."""
    return static_file(name, request.headers.get("if-none-match"))
