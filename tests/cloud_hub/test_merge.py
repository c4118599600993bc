"""Pure merge rules: partial buckets add up the same in any order; shapes that differ refuse."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud_hub.services.merge import MergeConflict, fold, merge_heatmaps, merge_rollups
from common.telemetry import Rollup
from tests.cloud_hub.batches import counter, heatmap, samples

EDGES = [1.0, 3.0]
values = st.lists(st.integers(0, 40).map(lambda n: n / 8), min_size=1, max_size=6)


@given(st.lists(values, min_size=1, max_size=5), st.randoms())
def test_samples_partials_merge_to_the_rollup_of_all_their_values(
    parts: list[list[float]], rnd: random.Random
) -> None:
    partials = [samples(v, EDGES) for v in parts]
    rnd.shuffle(partials)
    merged = partials[0]
    for p in partials[1:]:
        merged = merge_rollups(merged, p)
    everything = samples([x for v in parts for x in v], EDGES)
    assert merged == everything


def test_counters_add_and_heatmaps_add_cell_by_cell() -> None:
    assert merge_rollups(counter(3), counter(4)).count == 7
    assert merge_heatmaps(heatmap([1, 2, 3, 4]), heatmap([0.5, 0, 0, 1])).person_seconds == [
        1.5,
        2,
        3,
        5,
    ]


@pytest.mark.parametrize(
    ("stored", "incoming", "says"),
    [
        (counter(3), samples([1.0], target="door", metric="line_in"), "samples"),
        (counter(3), counter(3, interval_s=30, bucket_start=counter(3).bucket_start), "interval_s"),
        (samples([1.0], [1.0]), samples([1.0], [2.0]), "histogram_edges"),
        (samples([1.0], [1.0]), samples([1.0]), "histogram_edges"),
    ],
)
def test_rollups_of_different_shape_refuse_to_merge(
    stored: Rollup, incoming: Rollup, says: str
) -> None:
    with pytest.raises(MergeConflict, match=says):
        merge_rollups(stored, incoming)


def test_fold_merges_by_key_and_dead_letters_only_the_conflicting_later_item() -> None:
    items = [
        (1, heatmap([1, 1, 1, 1])),
        (2, heatmap([1, 1, 1, 1], grid_w=4)),
        (3, heatmap([2, 2, 2, 2])),
    ]
    folded, dead = fold(items, lambda h: h.bucket_start, merge_heatmaps)
    (only,) = folded.values()
    assert only.value.person_seconds == [3, 3, 3, 3] and only.seqs == [1, 3]
    assert [n.seq for n in dead] == [2] and "grid" in dead[0].reason
