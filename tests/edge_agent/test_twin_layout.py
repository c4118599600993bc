"""A rolled-out store layout on the box: merged into the file config (properties: the box's own
sections never change, a camera without a source keeps the file's), validated with what only
the box can check, and kept on disk so that a restart runs it (a trial left open failed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.store_config.layout import CameraLayout, StoreLayout
from common.store_config.tracker import TrackerConfig
from edge_agent.config import StoreConfig, parse_config
from edge_agent.errors import ConfigError
from edge_agent.process import open_detector
from edge_agent.twin.layout import BOX_SECTIONS, check_on_box, layout_config, merge_layout
from edge_agent.twin.layout_follower import layout_at_start
from edge_agent.twin.layout_state import (
    AppliedLayout,
    LayoutState,
    LayoutStateFile,
    LayoutTrial,
)

VIDEO = "videos/one-by-one-person-detection.mp4"
FILE_CAMERAS = ("door", "aisle", "till")
SECRET_URL = "rtsp://admin:hunter2@10.0.0.21/stream1"  # the box's own, never in a layout


def _file_config(assets: Path, tmp_path: Path) -> StoreConfig:
    raw = {
        "store_id": "s1",
        "device_id": "s1-box",
        "timezone": "Europe/Paris",
        "model": {"path": str(assets / "models/person/yolox_nano.onnx"), "confidence": 0.2},
        "tracker": {"lost_track_s": 3.0},
        "cameras": [
            {"id": "door", "source": str(assets / VIDEO), "fps": 3},
            {"id": "aisle", "source": SECRET_URL, "fps": 5},
            {"id": "till", "source": "0", "enabled": False},
        ],
        "outbox": {"path": "outbox.sqlite3", "max_mb": 64},
        "sync": {"transport": "http", "hub_url": "http://127.0.0.1:9"},
        "privacy": {"heatmap_image_every_s": 600},
        "metrics": {"port": 9100},
        "twin": {"staging_dir": "twin", "config_trial_s": 5},
    }
    return parse_config(raw, tmp_path)


def _line(i: int) -> dict[str, Any]:
    return {"id": f"line-{i}", "points": [[0.1, 0.5], [0.9, 0.5]], "inside": [0.5, 0.2]}


@st.composite
def layouts(draw: st.DrawFn) -> StoreLayout:
    known = draw(st.lists(st.sampled_from(FILE_CAMERAS), unique=True, max_size=3))
    new = draw(st.lists(st.sampled_from(["cam-a", "cam-b"]), unique=True, max_size=2))
    if not known and not new:
        known = ["door"]
    cameras = []
    for cam_id in draw(st.permutations([*known, *new])):
        source = None
        if cam_id in new or draw(st.booleans()):
            source = draw(st.sampled_from(["rtsp://10.0.0.9/live", "tcp://127.0.0.1:9", "1"]))
        cameras.append(
            CameraLayout(
                id=cam_id,
                source=source,
                fps=draw(st.sampled_from([1.0, 3.0, 10.0])),
                enabled=draw(st.booleans()),
                lines=[_line(i) for i in range(draw(st.integers(0, 2)))],
                rollup_interval_s=draw(st.sampled_from([10, 60, 300])),
                devices=draw(st.sampled_from([None, ["s1-box"], ["other-box", "s1-box"]])),
            )
        )
    # Cameras of the store's other box: never this box's.
    cameras += [CameraLayout(id="other-cam", source="1", devices=["other-box"])] * draw(
        st.integers(0, 1)
    )
    timezone = draw(st.sampled_from([None, "UTC", "America/New_York"]))
    tracker = draw(st.sampled_from([None, TrackerConfig(lost_track_s=1.0, min_hits=2)]))
    return StoreLayout(timezone=timezone, tracker=tracker, cameras=cameras)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(layout=layouts())
def test_the_merge_keeps_the_box_sections_and_the_file_sources(
    layout: StoreLayout, assets: Path, tmp_path: Path
) -> None:
    file_cfg = _file_config(assets, tmp_path)
    merged = layout_config(file_cfg, layout, tmp_path)
    for section in BOX_SECTIONS:
        assert getattr(merged, section) == getattr(file_cfg, section), section
    assert merged.timezone == (layout.timezone or file_cfg.timezone)
    assert merged.tracker == (layout.tracker or file_cfg.tracker)
    mine = [c for c in layout.cameras if c.devices is None or "s1-box" in c.devices]
    assert [c.id for c in merged.cameras] == [c.id for c in mine]
    file_sources = {c.id: c.source for c in file_cfg.cameras}
    for got, want in zip(merged.cameras, mine, strict=True):
        assert got.source == (want.source if want.source is not None else file_sources[want.id])
        analytics = want.model_dump(exclude={"source", "devices"})
        assert got.model_dump(exclude={"source"}) == analytics
    # The box's camera password never needs to travel: a layout without sources keeps it.
    if any(c.id == "aisle" and c.source is None for c in layout.cameras):
        assert merged.camera("aisle").source == SECRET_URL


def test_a_store_with_two_boxes_splits_its_cameras_by_devices(assets: Path, tmp_path: Path) -> None:
    file_cfg = _file_config(assets, tmp_path)  # device s1-box
    layout = StoreLayout(
        cameras=[
            CameraLayout(id="door", devices=["s1-box"]),
            CameraLayout(id="backroom", devices=["s1-other"]),  # the other box's: no source here
        ]
    )
    assert [c.id for c in layout_config(file_cfg, layout, tmp_path).cameras] == ["door"]
    theirs = StoreLayout(cameras=[CameraLayout(id="backroom", devices=["s1-other"])])
    with pytest.raises(ConfigError, match=r"no camera of the layout is for this box \(s1-box\)"):
        merge_layout(file_cfg, theirs)


def test_a_layout_camera_the_file_does_not_know_needs_a_source(
    assets: Path, tmp_path: Path
) -> None:
    file_cfg = _file_config(assets, tmp_path)
    layout = StoreLayout(cameras=[CameraLayout(id="door"), CameraLayout(id="backroom")])
    with pytest.raises(ConfigError, match=r"'backroom' has no source.*\['aisle', 'door', 'till'\]"):
        merge_layout(file_cfg, layout)
    # With a source it is a new camera; a relative path is the config file folder's.
    (tmp_path / "clips").mkdir()
    layout = StoreLayout(cameras=[CameraLayout(id="backroom", source="clips/back.mp4")])
    merged = layout_config(file_cfg, layout, tmp_path)
    assert merged.camera("backroom").source == str(tmp_path / "clips/back.mp4")


def test_the_box_refuses_what_it_cannot_run(assets: Path, tmp_path: Path) -> None:
    file_cfg = _file_config(assets, tmp_path)
    shelf = {
        "id": "drinks",
        "kind": "shelf",
        "polygon": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]],
        "shelf": {
            "product_classes": ["bottle"],
            "slots": [{"id": "left", "box": [0.1, 0.2, 0.3, 0.8]}],
            "classifier": "bundles/products",
        },
    }
    layout = StoreLayout(
        cameras=[
            CameraLayout(id="door", source="clips/missing.mp4"),
            CameraLayout(id="aisle", zones=[shelf]),
            CameraLayout(id="usb", source="/dev/video7"),  # a device: opened at run time
        ]
    )
    merged = layout_config(file_cfg, layout, tmp_path)
    with pytest.raises(ConfigError) as info:
        check_on_box(merged)
    text = str(info.value)
    assert f"cameras[door].source: no file {tmp_path / 'clips/missing.mp4'}" in text
    assert "cameras[aisle].zones[drinks].shelf.classifier" in text
    assert "retail-export classifier train" in text  # what to do about it
    assert "usb" not in text
    # The running detector was opened for people only: it cannot see bottles.
    detector = open_detector(file_cfg)
    ok = StoreLayout(cameras=[CameraLayout(id="door"), CameraLayout(id="aisle")])
    check_on_box(layout_config(file_cfg, ok, tmp_path), detector)
    no_cls = shelf["shelf"] | {"classifier": None}  # type: ignore[operator]
    bottles = StoreLayout(cameras=[CameraLayout(id="aisle", zones=[shelf | {"shelf": no_cls}])])
    with pytest.raises(ConfigError, match=r"keeps only the classes \['person'\].*\['bottle'\]"):
        check_on_box(layout_config(file_cfg, bottles, tmp_path), detector)
    unicorns = {**no_cls, "product_classes": ["unicorn"]}
    odd = StoreLayout(cameras=[CameraLayout(id="aisle", zones=[shelf | {"shelf": unicorns}])])
    with pytest.raises(ConfigError, match=r"has no class \['unicorn'\]"):
        check_on_box(layout_config(file_cfg, odd, tmp_path), detector)


def _applied(version: int, layout: StoreLayout) -> AppliedLayout:
    return AppliedLayout(version=version, sha256=layout.sha256(), rollout_id=7, layout=layout)


def test_the_applied_layout_survives_a_restart_and_an_open_trial_failed(
    assets: Path, tmp_path: Path
) -> None:
    file_cfg = _file_config(assets, tmp_path)
    assert file_cfg.twin is not None
    states = LayoutStateFile(file_cfg.twin.staging_dir)
    v1 = StoreLayout(cameras=[CameraLayout(id="door", lines=[_line(0)])])
    v2 = StoreLayout(cameras=[CameraLayout(id="aisle")])
    # Nothing kept: the file's layout.
    start = layout_at_start(file_cfg, tmp_path)
    assert start.config == file_cfg and start.state == LayoutState()
    assert not states.path.exists()
    # v1 passed its trial here, then the box was restarted during the trial of v2.
    trial = LayoutTrial(target=_applied(2, v2), rollout_id=8, started_at=1.0)
    states.store(LayoutState(current=_applied(1, v1), trial=trial))
    start = layout_at_start(file_cfg, tmp_path)
    assert [c.id for c in start.config.cameras] == ["door"]
    assert [line.id for line in start.config.camera("door").lines] == ["line-0"]
    assert start.state.trial is None and start.state.failed is not None
    assert start.state.failed.version == 2
    assert "stopped (crash or restart) during the trial of layout version 2" in (
        start.state.failed.reason
    )
    assert states.load() == start.state  # on disk: the next start does not report it again
    # The file changed under the kept layout (camera door gone): the file's layout runs.
    raw = json.loads(file_cfg.model_dump_json())
    raw["cameras"] = [c for c in raw["cameras"] if c["id"] != "door"]
    smaller = parse_config(raw, tmp_path)
    start = layout_at_start(smaller, tmp_path)
    assert start.config == smaller and start.state.current is None
    assert start.state.previous == _applied(1, v1)
    assert start.state.failed is not None and "no longer fits" in start.state.failed.reason


def test_a_corrupt_state_file_is_moved_aside(assets: Path, tmp_path: Path) -> None:
    states = LayoutStateFile(tmp_path / "twin")
    states.store(LayoutState(current=_applied(1, StoreLayout(cameras=[CameraLayout(id="x")]))))
    assert not (tmp_path / "twin" / "applied-layout.tmp").exists()
    states.path.write_text('{"current": {"version": "one"')
    assert states.load() == LayoutState()
    assert not states.path.exists()
    assert len(list((tmp_path / "twin").glob("applied-layout.corrupt-*"))) == 1
