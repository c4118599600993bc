"""People's JWTs from an identity provider, against a real hub process: the test plays the
provider (an EC P-256 key pair made here). A valid token scopes exactly like an API key of the
same role; expired, foreign-audience, foreign-issuer, wrongly signed, ``alg: none`` and
HS256-with-the-public-key tokens are all refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from cloud_hub.services.stores import StoreUpdate, put_store
from tests.cloud_hub.hub_process import CLEAN_EXIT, HubProcess

ISS = "https://idp.example.com"
AUD = "retail-hub"


def _pem(key: ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[HubProcess, ec.EllipticCurvePrivateKey]]:
    folder: Path = tmp_path_factory.mktemp("hub-jwt")
    url = f"sqlite:///{folder / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url)
    with engine.begin() as conn:
        for store in ("paris", "nyc"):
            put_store(conn, store, StoreUpdate(name=store, timezone="UTC"), now=time.time())
    engine.dispose()
    idp = ec.generate_private_key(ec.SECP256R1())
    key_file = folder / "idp.pem"
    key_file.write_text(_pem(idp))
    proc = HubProcess(folder)
    proc.start(
        url,
        env={
            "RETAIL_HUB_JWT_PUBLIC_KEY_FILE": str(key_file),
            "RETAIL_HUB_JWT_ISSUER": ISS,
            "RETAIL_HUB_JWT_AUDIENCE": AUD,
            "RETAIL_HUB_RUN_JOBS": "false",
        },
    )
    yield proc, idp
    assert proc.stop() in CLEAN_EXIT, proc.log()


def _token(key: Any, alg: str = "ES256", **over: Any) -> str:
    claims = {"iss": ISS, "aud": AUD, "sub": "alice", "exp": int(time.time()) + 300}
    claims.update({"role": "store_manager", "stores": ["paris"]})
    claims.update(over)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm=alg)


def _hs256_by_hand(key: bytes) -> str:
    """The algorithm-confusion forgery: an HS256 token whose HMAC key is the provider's public
    key (which anyone has). PyJWT itself refuses to make one, so it is built by hand."""

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"iss": ISS, "aud": AUD, "sub": "x", "exp": int(time.time()) + 60, "role": "hq_admin"}
    payload = b64(json.dumps(claims).encode())
    mac = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(mac)}"


def _get(proc: HubProcess, path: str, token: str) -> httpx.Response:
    return httpx.get(proc.url + "/api/v1" + path, headers={"Authorization": f"Bearer {token}"})


def test_a_valid_token_scopes_like_an_api_key_of_its_role(
    hub: tuple[HubProcess, ec.EllipticCurvePrivateKey],
) -> None:
    proc, idp = hub
    manager = _token(idp)
    assert [s["store_id"] for s in _get(proc, "/stores", manager).json()["items"]] == ["paris"]
    assert _get(proc, "/stores/nyc", manager).status_code == 404
    r = httpx.put(
        proc.url + "/api/v1/stores/paris",
        json={"name": "x", "timezone": "UTC"},
        headers={"Authorization": f"Bearer {manager}"},
    )
    assert r.status_code == 403  # a store manager never writes stores
    admin = _token(idp, role="hq_admin", stores=None)
    assert {s["store_id"] for s in _get(proc, "/stores", admin).json()["items"]} == {"paris", "nyc"}


def test_forged_expired_and_foreign_tokens_are_refused(
    hub: tuple[HubProcess, ec.EllipticCurvePrivateKey],
) -> None:
    proc, idp = hub
    other = ec.generate_private_key(ec.SECP256R1())
    public_pem = _pem(idp).encode()
    bad = {
        "expired": _token(idp, exp=int(time.time()) - 120),
        "audience": _token(idp, aud="another-app"),
        "issuer": _token(idp, iss="https://evil.example.com"),
        "other key": _token(other),
        "alg none": jwt.encode(
            {"iss": ISS, "aud": AUD, "sub": "x", "exp": int(time.time()) + 60, "role": "hq_admin"},
            None,
            algorithm="none",
        ),
        "hs256 with the public key": _hs256_by_hand(public_pem),
        "manager of no store": _token(idp, stores=[]),
        "unknown role": _token(idp, role="root"),
        "no expiry": _token(idp, exp=None),
    }
    for what, token in bad.items():
        r = _get(proc, "/stores", token)
        assert r.status_code == 401, what
        assert r.headers["WWW-Authenticate"] == "Bearer"
    log = proc.log()
    assert all(t not in log for t in bad.values())
