"""A rolled-out store layout on this box: merged into the box's file config, then validated.

The hub rolls out a ``StoreLayout`` (``common.store_config.layout``): the time zone, the
tracker and the cameras with their lines, zones, shelves and alert rules. The box keeps the
rest of its file (model, outbox, sync, privacy, metrics, twin, ids). ``merge_layout`` makes the
config the agent would run: the layout's time zone and tracker where it gives them, and its
cameras in place of the file's; a layout camera without ``source`` keeps the file's source for
that camera id (camera passwords stay on the box). ``check_on_box`` then checks what only the
box can: local file sources and shelf classifier bundles exist, and the running detector knows
and keeps the classes the shelves need.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from common.store_config.layout import StoreLayout
from edge_agent.config import StoreConfig, parse_config
from edge_agent.detect.detector import Detector
from edge_agent.errors import ConfigError, ModelError, SourceError
from edge_agent.process import detector_classes
from edge_agent.shelf.classes import DetectorClasses
from edge_agent.shelf.products import read_bundle_info
from edge_agent.sources.spec import SourceKind, parse_source

log = logging.getLogger(__name__)

# The sections a layout never changes: what belongs to the box, not to the store's layout.
BOX_SECTIONS = ("store_id", "device_id", "model", "outbox", "sync", "privacy", "metrics", "twin")


def merge_layout(file_config: StoreConfig, layout: StoreLayout) -> dict[str, Any]:
    """The config mapping the box runs with ``layout``: ``file_config`` (as JSON-able data)
    with the layout's time zone and tracker where not None and the layout's cameras for this
    box (``devices`` null or naming it) in place of the file's. Not validated yet
    (``layout_config`` does that).

    Raises:
        ConfigError: a layout camera without a source that the file does not know, or no
            camera for this box.
    """
    data = file_config.model_dump(mode="json")
    if layout.timezone is not None:
        data["timezone"] = layout.timezone
    if layout.tracker is not None:
        data["tracker"] = layout.tracker.model_dump(mode="json")
    sources = {c.id: c.source for c in file_config.cameras}
    cameras = []
    mine = [c for c in layout.cameras if c.devices is None or file_config.device_id in c.devices]
    if not mine:
        raise ConfigError(
            f"no camera of the layout is for this box ({file_config.device_id}): every camera "
            "names other boxes in `devices`"
        )
    for cam in mine:
        entry = cam.model_dump(mode="json", exclude={"devices"})
        if cam.source is None:
            if cam.id not in sources:
                raise ConfigError(
                    f"layout camera {cam.id!r} has no source and this box's config file has no "
                    f"camera {cam.id!r} (it has {sorted(sources)}): give the camera a source in "
                    "the layout, or add it to the box's file"
                )
            entry["source"] = sources[cam.id]
        cameras.append(entry)
    data["cameras"] = cameras
    return data


def layout_config(
    file_config: StoreConfig, layout: StoreLayout, base_dir: Path, name: str = "layout"
) -> StoreConfig:
    """The validated config of ``layout`` on this box: ``merge_layout`` through the same rules
    as the box's file (``parse_config``, what ``retail-edge check-config`` runs); relative
    paths in the layout resolve against ``base_dir`` (the config file's folder).

    Raises:
        ConfigError: the merge or a field is refused; the message names the field.
    """
    return parse_config(merge_layout(file_config, layout), base_dir, name)


def check_on_box(config: StoreConfig, detector: Detector | None = None) -> None:
    """What only the box can check in a config it is about to run: each enabled camera's
    source parses and a local file source exists; each shelf classifier bundle exists and
    matches its manifest; with the running ``detector``, the model has the shelves' product
    classes and the detector keeps them (its class filter was set when it was opened).

    Raises:
        ConfigError: every problem found, one per line.
    """
    problems: list[str] = []
    for cam in config.cameras:
        if not cam.enabled:
            continue
        try:
            spec = parse_source(cam.source)
        except SourceError as exc:
            problems.append(f"cameras[{cam.id}].source: {exc}")
            continue
        if spec.kind is SourceKind.FILE and not Path(spec.location).is_file():
            problems.append(f"cameras[{cam.id}].source: no file {spec.location} on this box")
        for zone in cam.zones:
            if zone.shelf is None or zone.shelf.classifier is None:
                continue
            try:
                read_bundle_info(Path(zone.shelf.classifier))
            except ModelError as exc:
                problems.append(f"cameras[{cam.id}].zones[{zone.id}].shelf.classifier: {exc}")
    if detector is not None:
        problems.extend(_class_problems(config, detector))
        low = config.tracker.track_low_thresh
        if low < detector.settings.confidence:
            log.warning(
                "tracker.track_low_thresh %.2f is below the running detector's confidence "
                "%.2f (fixed when the agent started): boxes between them come after a restart",
                low, detector.settings.confidence,
            )  # fmt: skip
    if problems:
        raise ConfigError("refused on this box:\n  - " + "\n  - ".join(problems))


def _class_problems(config: StoreConfig, detector: Detector) -> list[str]:
    wanted = detector_classes(config)
    try:
        DetectorClasses(detector.manifest.classes, config.model.classes).ids(wanted)
    except ConfigError as exc:
        return [f"model {detector.manifest.name} {detector.manifest.version}: {exc}"]
    kept = detector.settings.classes
    if kept is None:
        return []
    have = {k.replace("_", " ") for k in kept}
    missing = [n for n in wanted if n.replace("_", " ") not in have]
    if not missing:
        return []
    return [
        f"the running detector keeps only the classes {list(kept)} (fixed when the agent "
        f"started) and the layout's shelves need {missing} as well: add a shelf with those "
        "product classes to the box's config file, restart the agent, then roll the layout "
        "out again"
    ]
