"""Readiness: can this hub process do its work now? The database (reachable, schema current)
and, where the deployment has one, the MQTT broker (accepts this hub's credentials)."""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from cloud_hub.core.broker import use_credentials
from cloud_hub.core.config import HubSettings
from cloud_hub.db import ping
from cloud_hub.migrate import SchemaOutOfDateError, check_schema_current


class Check(BaseModel):
    """One dependency's state: ``ok``, and why not."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ok: bool
    detail: str


class Readiness(BaseModel):
    """``ready`` when every configured check passed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ready: bool
    checks: dict[str, Check]


def database_check(engine: Engine) -> Check:
    """The database answers and its schema is at this hub's migration head."""
    try:
        ping(engine)
        check_schema_current(engine)
    except SchemaOutOfDateError as exc:
        return Check(ok=False, detail=str(exc))
    except SQLAlchemyError as exc:
        return Check(ok=False, detail=f"unreachable: {getattr(exc, 'orig', exc)}")
    return Check(ok=True, detail=engine.dialect.name)


def broker_check(settings: HubSettings, timeout_s: float = 3.0) -> Check:
    """The broker accepts an MQTT connection with the hub's credentials within ``timeout_s``."""
    where = f"{settings.mqtt_host}:{settings.mqtt_port}"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"hub-ready-{uuid.uuid4().hex[:12]}",
        protocol=mqtt.MQTTv5,
    )
    use_credentials(client, settings)
    answered = threading.Event()
    outcome: list[str] = []

    def on_connect(
        _c: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode, _p: object
    ) -> None:
        outcome.append("" if not reason.is_failure else f"refused: {reason}")
        answered.set()

    client.on_connect = on_connect
    try:
        client.connect_async(settings.mqtt_host, settings.mqtt_port, keepalive=10)
        client.loop_start()
        if not answered.wait(timeout_s):
            return Check(ok=False, detail=f"broker {where} did not answer within {timeout_s} s")
        return Check(ok=not outcome[0], detail=outcome[0] or where)
    except (OSError, ValueError) as exc:
        return Check(ok=False, detail=f"broker {where}: {exc}")
    finally:
        client.disconnect()
        client.loop_stop()


def readiness(engine: Engine, settings: HubSettings) -> Readiness:
    """Run the checks ``settings.ready_checks`` names."""
    checks: dict[str, Check] = {}
    if "database" in settings.ready_checks:
        checks["database"] = database_check(engine)
    if "broker" in settings.ready_checks:
        checks["broker"] = broker_check(settings)
    return Readiness(ready=all(c.ok for c in checks.values()), checks=checks)
