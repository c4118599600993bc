"""API keys and roles: who may read or change what. Pure: no database, no clock.

A key is ``rcv_`` followed by 32 random bytes, URL-safe base64 (43 characters): 256 bits of
entropy. The hub stores only its SHA-256 (hex). A slow password hash (bcrypt, argon2) protects
*guessable* secrets against offline guessing; a 256-bit random key cannot be guessed, so one
SHA-256 is as strong here, costs microseconds per request instead of tens of milliseconds, and
lets the hub find a key by an indexed equality lookup on the hash (no per-key salt needed).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

KEY_PREFIX = "rcv_"
KEY_RANDOM_BYTES = 32
SHOWN_PREFIX_CHARS = len(KEY_PREFIX) + 6  # what ``list-keys`` shows to recognise a key


class Role(StrEnum):
    """What a key's holder is."""

    HQ_ADMIN = "hq_admin"  # every store, read and write
    STORE_MANAGER = "store_manager"  # the listed stores, read; acknowledge their alerts
    INTEGRATOR = "integrator"  # analytics of the listed stores (or of all, if so created), read


class Permission(StrEnum):
    """What a route needs, independently of which store it is about."""

    STORES_READ = "stores:read"
    STORES_WRITE = "stores:write"
    ANALYTICS_READ = "analytics:read"
    INVENTORY_READ = "inventory:read"
    ALERTS_READ = "alerts:read"  # list and read alerts and the store threshold rules
    ALERTS_WRITE = "alerts:write"  # acknowledge and resolve alerts
    ALERT_RULES_WRITE = "alert_rules:write"  # set and delete store threshold rules
    WEBHOOKS_ADMIN = "webhooks:admin"  # register, list and delete webhooks; read their log
    MODELS_ADMIN = "models:admin"  # upload, list and download model bundles; rollouts
    VIDEO_READ = "video:read"  # read uploaded-clip processing jobs
    VIDEO_PROCESS = "video:process"  # upload clips and start processing jobs
    CONFIGS_READ = "configs:read"  # read store layout versions and config rollouts
    CONFIGS_WRITE = "configs:write"  # create layout versions; start and abort config rollouts


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.HQ_ADMIN: frozenset(Permission),
    Role.STORE_MANAGER: frozenset(
        {
            Permission.STORES_READ,
            Permission.ANALYTICS_READ,
            Permission.INVENTORY_READ,
            Permission.ALERTS_READ,
            Permission.ALERTS_WRITE,
            Permission.VIDEO_READ,
            Permission.CONFIGS_READ,  # which layout their store runs, and its rollouts
        }
    ),
    # Integrators read analytics; the store list (ids, names, time zones) comes with it
    # because analytics buckets are only meaningful with the store's time zone. They read
    # alerts (a ticketing system polling them) but never acknowledge or resolve one.
    Role.INTEGRATOR: frozenset(
        {Permission.STORES_READ, Permission.ANALYTICS_READ, Permission.ALERTS_READ}
    ),
}


@dataclass(frozen=True)
class Caller:
    """The holder of a valid (known, unrevoked) API key, or of a verified JWT.

    ``store_ids`` is None for a key that sees every store (HQ admins, integrators created with
    ``--all-stores``), else the stores it may see.
    """

    key_id: int | None  # None: a JWT from the identity provider, not an API key
    name: str
    role: Role
    store_ids: frozenset[str] | None

    def may(self, permission: Permission) -> bool:
        """Whether the role grants ``permission``."""
        return permission in ROLE_PERMISSIONS[self.role]

    def sees(self, store_id: str) -> bool:
        """Whether ``store_id`` is within the key's stores."""
        return self.store_ids is None or store_id in self.store_ids


def generate_api_key() -> str:
    """A new random API key (``rcv_`` + 43 URL-safe characters, 256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def hash_api_key(key: str) -> str:
    """SHA-256 hex digest of ``key``: what the hub stores and looks keys up by."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


DEVICE_SECRET_PREFIX = "rcd_"  # a device's own credential, issued once at enrollment
ENROLLMENT_TOKEN_PREFIX = "rce_"  # one-time token an installer types into a new store box


def generate_device_secret() -> str:
    """A new device secret (``rcd_`` + 43 URL-safe characters, 256 bits); stored hashed like
    API keys (``hash_api_key``), for the same reasons."""
    return DEVICE_SECRET_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def generate_enrollment_token() -> str:
    """A new one-time enrollment token (``rce_`` + 43 URL-safe characters, 256 bits)."""
    return ENROLLMENT_TOKEN_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)


MOSQUITTO_PBKDF2_ITERATIONS = 101  # what mosquitto_passwd 2.0 writes ($7$ = PBKDF2-SHA512)


def mosquitto_password_hash(secret: str, salt: bytes | None = None) -> str:
    """``secret`` hashed the way Mosquitto's password file holds it (``$7$`` PBKDF2-SHA512, as
    ``mosquitto_passwd`` writes it), so the broker can check a device's MQTT password without
    the hub keeping the secret."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac(
        "sha512", secret.encode("utf-8"), salt, MOSQUITTO_PBKDF2_ITERATIONS
    )
    b64 = base64.b64encode
    return f"$7${MOSQUITTO_PBKDF2_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"
