"""Pure parts of camera ingestion: source specs, backoff, sampling maths, media clock, rates."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from edge_agent.errors import SourceError
from edge_agent.sources import (
    BackoffPolicy,
    MediaClock,
    MediaTimeSampler,
    RateMeter,
    SourceKind,
    SourceSpec,
    backoff_delay,
    parse_source,
)

# ---- source specs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (0, SourceSpec(SourceKind.DEVICE, "0", 0)),
        ("1", SourceSpec(SourceKind.DEVICE, "1", 1)),
        (" 2 ", SourceSpec(SourceKind.DEVICE, "2", 2)),
        ("/dev/video3", SourceSpec(SourceKind.DEVICE, "/dev/video3")),
        ("videos/a.mp4", SourceSpec(SourceKind.FILE, "videos/a.mp4")),
        ("/data/cam 1/clip.h264", SourceSpec(SourceKind.FILE, "/data/cam 1/clip.h264")),
        (Path("/x/y.gif"), SourceSpec(SourceKind.FILE, "/x/y.gif")),
        ("file:///x/y.avi", SourceSpec(SourceKind.FILE, "/x/y.avi")),
        (
            "rtsp://admin:pw@10.0.0.5:554/stream1",
            SourceSpec(SourceKind.NETWORK, "rtsp://admin:pw@10.0.0.5:554/stream1"),
        ),
        ("RTSPS://cam.local/live", SourceSpec(SourceKind.NETWORK, "RTSPS://cam.local/live")),
        ("http://10.0.0.6/mjpg", SourceSpec(SourceKind.NETWORK, "http://10.0.0.6/mjpg")),
        ("https://cam/x.m3u8", SourceSpec(SourceKind.NETWORK, "https://cam/x.m3u8")),
        ("tcp://127.0.0.1:9000", SourceSpec(SourceKind.NETWORK, "tcp://127.0.0.1:9000")),
        ("udp://239.0.0.1:1234", SourceSpec(SourceKind.NETWORK, "udp://239.0.0.1:1234")),
    ],
)
def test_parse_source_kinds(source: str | int | Path, expected: SourceSpec) -> None:
    assert parse_source(source) == expected


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("ftp://host/clip.mp4", "unknown camera source scheme 'ftp'"),
        ("gopher://x", "unknown camera source scheme 'gopher'"),
        ("", "empty"),
        ("   ", "empty"),
        (-1, "0 or more"),
        ("rtsp:///nohost", "no host"),
    ],
)
def test_parse_source_rejects_with_actionable_message(source: str | int, fragment: str) -> None:
    with pytest.raises(SourceError, match=fragment):
        parse_source(source)


def test_stream_password_never_appears_in_messages() -> None:
    spec = parse_source("rtsp://admin:s3cret@10.0.0.5:554/live")
    assert spec.display == "rtsp://admin:***@10.0.0.5:554/live"
    with pytest.raises(SourceError) as info:
        parse_source("ftps://admin:s3cret@10.0.0.5/live")
    assert "s3cret" not in str(info.value)


# ---- backoff -------------------------------------------------------------------------------

policies = st.builds(
    lambda initial, factor, extra, jitter: BackoffPolicy(initial, factor, initial + extra, jitter),
    st.floats(0.001, 10.0),
    st.floats(1.0, 10.0),
    st.floats(0.0, 600.0),
    st.floats(0.0, 5.0),
)


@given(policy=policies, attempt=st.integers(0, 10_000), u=st.floats(0.0, 1.0))
def test_backoff_is_monotone_and_capped(policy: BackoffPolicy, attempt: int, u: float) -> None:
    delay = backoff_delay(attempt, policy, u)
    following = backoff_delay(attempt + 1, policy, u)
    assert following >= delay
    assert policy.initial_s <= delay <= policy.cap_s + policy.jitter_s + 1e-9
    # The jitter is additive on top of the (capped) exponential part.
    assert (
        backoff_delay(attempt, policy, 0.0)
        <= delay
        <= backoff_delay(attempt, policy, 0.0) + (policy.jitter_s + 1e-9)
    )


@given(policy=policies, u=st.floats(0.0, 1.0))
def test_backoff_reaches_the_cap(policy: BackoffPolicy, u: float) -> None:
    assume(policy.factor > 1.01)
    # After enough doublings the exponential part must be at the cap, whatever the attempt.
    enough = math.ceil(math.log(policy.cap_s / policy.initial_s) / math.log(policy.factor)) + 1
    for attempt in (enough, enough + 1, 10**9):
        assert backoff_delay(attempt, policy, u) == pytest.approx(
            policy.cap_s + policy.jitter_s * u
        )


def test_backoff_schedule_by_hand() -> None:
    policy = BackoffPolicy(initial_s=1.0, factor=2.0, cap_s=30.0, jitter_s=0.0)
    assert [backoff_delay(n, policy, 0.0) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    jittered = BackoffPolicy(initial_s=1.0, factor=2.0, cap_s=30.0, jitter_s=0.5)
    assert backoff_delay(2, jittered, 0.5) == 4.25


@pytest.mark.parametrize(
    "kwargs",
    [{"initial_s": 0}, {"factor": 0.5}, {"initial_s": 5, "cap_s": 1}, {"jitter_s": -1}],
)
def test_backoff_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(**kwargs)


# ---- sampling ------------------------------------------------------------------------------


@given(
    source_fps=st.integers(5, 60),
    ratio=st.floats(0.02, 1.0),
    n_frames=st.integers(1, 400),
)
def test_sampler_keeps_the_frame_nearest_each_target(
    source_fps: int, ratio: float, n_frames: int
) -> None:
    target_fps = source_fps * ratio
    period = 1.0 / source_fps
    times = [i / source_fps for i in range(n_frames)]
    last = times[-1]
    # Targets whose nearest frame exists: k / target <= last + period / 2.
    reach = (last + period / 2) * target_fps
    assume(abs(reach - round(reach)) > 1e-6)  # no target exactly on the boundary
    n_targets = math.floor(reach) + 1

    sampler = MediaTimeSampler(target_fps)
    kept = [t for t in times if sampler.select(t, period)]

    assert len(kept) == n_targets
    for k, t in enumerate(kept):
        assert abs(t - k / target_fps) <= period / 2 + 1e-9


def test_sampler_ten_fps_to_three_by_hand() -> None:
    # 10 fps: the frames nearest 0, 1/3, 2/3, 1, 4/3 s are 0, 0.3, 0.7, 1.0, 1.3 s.
    sampler = MediaTimeSampler(3.0)
    kept = [i for i in range(14) if sampler.select(i / 10, 0.1)]
    assert kept == [0, 3, 7, 10, 13]


def test_sampler_does_not_burst_after_a_gap() -> None:
    sampler = MediaTimeSampler(2.0)
    before = [t for t in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5) if sampler.select(t, 0.1)]
    # Stream stalls for 10 s; afterwards one frame per 0.5 s again, not 20 catch-up frames.
    after = [t for t in (10.0, 10.1, 10.2, 10.3, 10.4, 10.5, 10.6) if sampler.select(t, 0.1)]
    assert before == [0.0, 0.5]
    assert after == [10.0, 10.5]


def test_sampler_without_target_keeps_everything() -> None:
    sampler = MediaTimeSampler(None)
    assert all(sampler.select(t, 0.0) for t in (0.0, 0.0, 0.001, 5.0))


@pytest.mark.parametrize("fps", [0.0, -3.0, math.nan, math.inf])
def test_sampler_rejects_bad_fps(fps: float) -> None:
    with pytest.raises(ValueError):
        MediaTimeSampler(fps)


def test_media_clock_uses_timestamps_and_fills_in_missing_ones() -> None:
    # A GIF with uneven delays reports real timestamps: they pass through.
    gif = MediaClock(16.67)
    assert [gif.time_s(ms) for ms in (0.0, 70.0, 130.0, 200.0)] == [0.0, 0.07, 0.13, 0.2]
    # Raw H.264 reports 0 ms for every frame: the clock advances one period (1/25 s) instead.
    raw = MediaClock(25.0)
    assert [raw.time_s(0.0) for _ in range(4)] == pytest.approx([0.0, 0.04, 0.08, 0.12])
    unknown = MediaClock(None)
    assert [unknown.time_s(math.nan) for _ in range(3)] == pytest.approx([0.0, 0.04, 0.08])


def test_rate_meter_by_hand() -> None:
    meter = RateMeter(window_s=5.0, start_s=100.0)
    for i in range(1, 101):  # one event every 0.1 s from 100.1 to 110.0
        meter.mark(100.0 + i / 10)
    # 50 events in (105, 110] over 5 s.
    assert meter.rate(110.0) == pytest.approx(10.0)
    # Just after start the window is shorter: 10 events in the first second.
    early = RateMeter(window_s=5.0, start_s=0.0)
    for i in range(1, 11):
        early.mark(i / 10)
    assert early.rate(1.0) == pytest.approx(10.0)
    # Nothing for 10 s: the rate decays to zero.
    assert meter.rate(120.0) == 0.0
