"""Store layout versions: each store's ``StoreLayout`` (cameras, lines, zones, shelves, alert
rules, tracker, time zone) numbered 1, 2, 3... per store and never changed once stored.

A layout is validated twice at the hub: by its pydantic model from ``common`` (the same one
the edge validates it with again before applying it), then by what only the hub can check
(``check_layout``): the layout's schema version is one this hub writes, no camera source
carries a password (camera passwords stay in the box's own file: leave ``source`` null), and
every alert rule watches a line, zone or camera that exists in its camera. A refusal names the
field as a location under ``layout`` (``("layout", "cameras", 0, "source")``). Times are UNIX
seconds (hub clock), passed in.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection, RowMapping

from cloud_hub.models import DEVICE_CREDENTIALS, STORE_CONFIGS, STORES
from cloud_hub.services.paging import PageInfo, page_info
from common.store_config.layout import LAYOUT_SCHEMA_VERSION, StoreLayout

Loc = tuple[str | int, ...]


class LayoutRejected(ValueError):
    """A layout the hub refuses: ``loc`` names the field (from the request body's ``layout``),
    ``message`` says why and what to do."""

    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(f"{'.'.join(str(p) for p in loc)}: {message}")
        self.loc = loc
        self.message = message


class StoreNotFound(LookupError):
    """The hub does not know the store (create it with ``PUT /api/v1/stores/{id}``)."""


class StoreConfigCreate(BaseModel):
    """A new layout version of a store."""

    model_config = ConfigDict(extra="forbid")

    layout: StoreLayout
    note: str | None = Field(None, max_length=2000, description="what changed, for people")


class StoreConfigOut(BaseModel):
    """One layout version of a store. ``created_at``: UNIX s UTC."""

    model_config = ConfigDict(extra="forbid")

    store_id: str
    version: int = Field(ge=1, description="1, 2, 3... per store")
    sha256: str = Field(description="sha256 hex of the layout's canonical JSON")
    layout: StoreLayout
    note: str | None
    created_by: str = Field(description="the API key's name (or jwt:SUB) that created it")
    created_at: float


class StoreConfigPage(PageInfo):
    """A store's layout versions, newest first."""

    items: list[StoreConfigOut]


def check_layout(layout: StoreLayout) -> None:
    """What the hub checks beyond the layout's own model; raises LayoutRejected."""
    if layout.schema_version != LAYOUT_SCHEMA_VERSION:
        raise LayoutRejected(
            ("layout", "schema_version"),
            f"schema_version {layout.schema_version} is not one this hub writes "
            f"({LAYOUT_SCHEMA_VERSION})",
        )
    for i, camera in enumerate(layout.cameras):
        if camera.source is not None and _has_password(camera.source):
            raise LayoutRejected(
                ("layout", "cameras", i, "source"),
                f"camera {camera.id!r}: the source carries a password; camera passwords stay "
                "on the box: leave source null and the box keeps its own file's source for "
                "this camera id",
            )
        targets = {camera.id} | {x.id for x in camera.lines} | {z.id for z in camera.zones}
        for j, rule in enumerate(camera.alerts):
            if rule.target not in targets:
                raise LayoutRejected(
                    ("layout", "cameras", i, "alerts", j, "target"),
                    f"alert {rule.id!r} of camera {camera.id!r} watches {rule.target!r}, which "
                    f"is none of its lines, zones or the camera itself ({sorted(targets)}); "
                    "the rule would never fire",
                )


def _check_devices(conn: Connection, store_id: str, layout: StoreLayout) -> None:
    """A camera's ``devices`` must be boxes enrolled in this store (a typo would leave the
    camera to no box at all); raises LayoutRejected."""
    d = DEVICE_CREDENTIALS.c
    enrolled = set(
        conn.execute(
            select(d.device_id).where(d.store_id == store_id, d.revoked_at.is_(None))
        ).scalars()
    )
    for i, camera in enumerate(layout.cameras):
        for j, device in enumerate(camera.devices or []):
            if device not in enrolled:
                raise LayoutRejected(
                    ("layout", "cameras", i, "devices", j),
                    f"camera {camera.id!r} names device {device!r}, which is not a box enrolled "
                    f"in store {store_id} ({sorted(enrolled) or 'none yet'}): enroll it first",
                )


def _has_password(source: str) -> bool:
    try:
        return urlsplit(source).password is not None
    except ValueError:  # not a URL the parser understands (e.g. a bad port): no password found
        return False


def _out(row: RowMapping) -> StoreConfigOut:
    return StoreConfigOut(
        store_id=row["store_id"],
        version=row["version"],
        sha256=row["sha256"],
        layout=StoreLayout.model_validate(row["layout"]),
        note=row["note"],
        created_by=row["created_by"],
        created_at=row["created_at"],
    )


def create_config(
    conn: Connection, store_id: str, request: StoreConfigCreate, *, actor: str, now: float
) -> StoreConfigOut:
    """Store ``request.layout`` as the store's next version (the highest so far + 1).

    Raises:
        StoreNotFound: the hub does not know the store. LayoutRejected: see ``check_layout``.
    """
    # Locking the store row serialises two creations for one store on PostgreSQL (SQLite
    # transactions are serialised already), so both cannot take the same number.
    store = conn.execute(
        select(STORES.c.store_id).where(STORES.c.store_id == store_id).with_for_update()
    ).first()
    if store is None:
        raise StoreNotFound(
            f"store {store_id!r} not found; create it first with PUT /api/v1/stores/{store_id}"
        )
    check_layout(request.layout)
    _check_devices(conn, store_id, request.layout)
    c = STORE_CONFIGS.c
    latest = conn.execute(select(func.max(c.version)).where(c.store_id == store_id)).scalar()
    out = StoreConfigOut(
        store_id=store_id,
        version=(latest or 0) + 1,
        sha256=request.layout.sha256(),
        layout=request.layout,
        note=request.note,
        created_by=actor,
        created_at=now,
    )
    values = out.model_dump(mode="json")
    conn.execute(insert(STORE_CONFIGS).values(**values))
    return out


def get_config(conn: Connection, store_id: str, version: int) -> StoreConfigOut | None:
    """One layout version of a store, or None."""
    c = STORE_CONFIGS.c
    row = (
        conn.execute(select(STORE_CONFIGS).where(c.store_id == store_id, c.version == version))
        .mappings()
        .first()
    )
    return None if row is None else _out(row)


def list_configs(conn: Connection, store_id: str, limit: int, offset: int) -> StoreConfigPage:
    """A store's layout versions, newest first, ``limit`` from ``offset``."""
    c = STORE_CONFIGS.c
    total = conn.execute(
        select(func.count()).select_from(STORE_CONFIGS).where(c.store_id == store_id)
    ).scalar_one()
    rows = conn.execute(
        select(STORE_CONFIGS)
        .where(c.store_id == store_id)
        .order_by(c.version.desc())
        .limit(limit)
        .offset(offset)
    ).mappings()
    return StoreConfigPage(
        items=[_out(r) for r in rows], **page_info(total, limit, offset).model_dump()
    )
