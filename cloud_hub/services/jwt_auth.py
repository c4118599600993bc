"""People signed in through the company's identity provider: JWTs as bearer tokens.

The hub never issues JWTs; it verifies tokens an identity provider (Azure AD, Okta, Keycloak...)
signed, against the provider's public key (``RETAIL_HUB_JWT_PUBLIC_KEY_FILE``: RS256, ES256 or
EdDSA) or a shared secret (``RETAIL_HUB_JWT_SECRET``: HS256), never both, so an attacker cannot
pass off a public key as an HMAC secret. ``iss``, ``aud`` and ``exp`` are required and checked.
The token's claims carry what an API key row holds: ``role`` (hq_admin, store_manager,
integrator) and ``stores`` (a list) or ``all_stores`` (integrators), under the same rules as
``retail-hub admin create-key``. ``sub`` names the caller in audit fields (``jwt:<sub>``).
"""

from __future__ import annotations

import logging
from typing import Any

import jwt

from cloud_hub.core.config import HubSettings
from cloud_hub.core.security import Caller, Role
from cloud_hub.services.api_keys import ApiKeyError, check_scope

log = logging.getLogger(__name__)

ASYMMETRIC = ["RS256", "ES256", "EdDSA"]
LEEWAY_S = 30  # clock skew allowed between the identity provider and the hub


def looks_like_jwt(token: str) -> bool:
    """A compact JWS has three dot-separated parts (API keys and device secrets have none)."""
    return token.count(".") == 2


class JwtVerifier:
    """Verifies bearer JWTs for ``settings`` (built once at start: the key file is read then)."""

    def __init__(self, settings: HubSettings) -> None:
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.key: Any
        if settings.jwt_public_key_file is not None:
            self.key = settings.jwt_public_key_file.read_text()
            self.algorithms = ASYMMETRIC
        else:
            assert settings.jwt_secret is not None  # checked by HubSettings
            self.key = settings.jwt_secret.get_secret_value()
            self.algorithms = ["HS256"]

    def caller(self, token: str) -> Caller | None:
        """The caller the token names; None when it is invalid, expired, for another issuer
        or audience, or grants a scope an API key could not have (the reason is logged, the
        token never)."""
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=self.algorithms,
                issuer=self.issuer,
                audience=self.audience,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
            return caller_from_claims(claims)
        except (jwt.PyJWTError, ApiKeyError, ValueError) as exc:
            log.info("request refused: JWT not accepted: %s", exc)
            return None


def caller_from_claims(claims: dict[str, Any]) -> Caller:
    """The caller a verified token's claims describe.

    Raises:
        ValueError: the role is unknown, or the stores do not go with the role.
    """
    role = Role(str(claims.get("role")))
    stores = claims.get("stores") or []
    all_stores = claims.get("all_stores") is True
    if not isinstance(stores, list) or not all(isinstance(s, str) for s in stores):
        raise ValueError("claim stores must be a list of store ids")
    check_scope(role, stores, all_stores)
    every = role is Role.HQ_ADMIN or all_stores
    return Caller(
        key_id=None,
        name=f"jwt:{claims['sub']}",
        role=role,
        store_ids=None if every else frozenset(stores),
    )
