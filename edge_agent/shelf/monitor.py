"""One shelf, frame by frame: occlusion skip, slot observation, debounced states, stock level.

Per analysed frame (media time ``t_s``, seconds):

1. **Occlusion.** A person box (people classes, score >= ``occlusion.person_confidence``)
   covering more than ``occlusion.min_overlap`` of the shelf polygon hides the shelf: the frame
   is skipped (counted in ``occluded_frames``) and changes nothing, so a shopper's arm in front
   of the products never reads as an empty slot.
2. **Observation.** A slot is observed stocked when a product box (``product_classes``, score
   >= ``product_confidence``) overlaps it by ``min_overlap`` of the smaller box, else empty.
   With a classifier, the product in each stocked slot is named (answers below
   ``classifier_min_score`` count as not observed).
3. **Debounce.** Occupancy and product identity each change only after holding ``hold_s``
   (``Debouncer``); ``since`` is the first frame of the held run.

Stock level = stocked slots / slots, known once every slot's state is; the status is
``out_of_stock`` at 0, ``low_stock`` below ``low_stock_below``, else ``ok``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from edge_agent.detect.detections import Detections
from edge_agent.shelf.config import ShelfConfig
from edge_agent.shelf.debounce import UNKNOWN, Debouncer
from edge_agent.shelf.geometry import F64, ShelfOutline, best_match, normalise_boxes
from edge_agent.shelf.products import ProductClassifier

EMPTY, STOCKED = -1, 0  # occupancy codes (UNKNOWN = -2 before any state held)

SlotState = Literal["stocked", "empty", "unknown"]
ShelfState = Literal["ok", "low_stock", "out_of_stock", "unknown"]
_STATE_NAME: dict[int, SlotState] = {UNKNOWN: "unknown", EMPTY: "empty", STOCKED: "stocked"}


@dataclass(frozen=True, slots=True)
class ShelfFrame:
    """What the shelf monitors need from one analysed frame.

    Attributes:
        detections: every box the detector kept (people and product classes), in pixels.
        image: the BGR frame, for the product classifier (None: identity is not observed).
    """

    detections: Detections
    image: npt.NDArray[np.uint8] | None = None


@dataclass(frozen=True, slots=True)
class SlotChange:
    """A slot's held state or seen product changed at media time ``t_s``; the new value was
    first observed at ``since_s`` (``t_s - since_s >= hold_s``)."""

    slot_id: str
    what: Literal["state", "product"]
    value: str  # "stocked" / "empty", or the product's class name
    since_s: float
    t_s: float


@dataclass(frozen=True, slots=True)
class SlotView:
    """One slot now: its held state, products, and times (media seconds; NaN = not yet)."""

    slot_id: str
    state: SlotState
    product: str | None
    seen_product: str | None
    misplaced: bool
    since_s: float
    empty_since_s: float | None


@dataclass(slots=True)
class ShelfUpdate:
    """What one frame did to a shelf."""

    occluded: bool
    changes: list[SlotChange] = field(default_factory=list)


class ShelfMonitor:
    """Stock state of one shelf zone's slots (media seconds in, held states out)."""

    def __init__(
        self,
        shelf_id: str,
        polygon: list[tuple[float, float]],
        config: ShelfConfig,
        product_class_ids: npt.NDArray[np.intp],
        person_class_ids: npt.NDArray[np.intp],
        classifier: ProductClassifier | None = None,
    ) -> None:
        self.shelf_id = shelf_id
        self.config = config
        self.slot_ids = [s.id for s in config.slots]
        self.products = [s.product for s in config.slots]
        self._slots: F64 = np.asarray([s.box for s in config.slots], np.float64)
        self._outline = ShelfOutline(np.asarray(polygon, np.float64))
        self._product_ids = np.asarray(product_class_ids, np.intp)
        self._person_ids = np.asarray(person_class_ids, np.intp)
        self.classifier = classifier
        n = len(self.slot_ids)
        self.occupancy = Debouncer(n, config.hold_s)
        self.identity = Debouncer(n, config.hold_s)
        self.frames = 0
        self.occluded_frames = 0

    # -- per frame ----------------------------------------------------------------------

    def occluded(self, dets: Detections, frame_w: int, frame_h: int) -> bool:
        """Whether a person box hides the shelf in this frame."""
        occ = self.config.occlusion
        people = np.isin(dets.class_id, self._person_ids) & (
            dets.confidence >= occ.person_confidence
        )
        if not people.any():
            return False
        boxes = normalise_boxes(dets.xyxy[people], frame_w, frame_h)
        return bool((self._outline.covered(boxes) > occ.min_overlap).any())

    def update(self, frame: ShelfFrame, frame_w: int, frame_h: int, t_s: float) -> ShelfUpdate:
        """Observe one frame at media time ``t_s`` of a ``frame_w`` x ``frame_h`` pixel image."""
        self.frames += 1
        dets = frame.detections
        if self.occluded(dets, frame_w, frame_h):
            self.occluded_frames += 1
            return ShelfUpdate(occluded=True)
        cfg = self.config
        is_product = np.isin(dets.class_id, self._product_ids) & (
            dets.confidence >= cfg.product_confidence
        )
        product_px = dets.xyxy[is_product]
        match = best_match(
            self._slots, normalise_boxes(product_px, frame_w, frame_h), cfg.min_overlap
        )
        stocked = match >= 0
        out = ShelfUpdate(occluded=False)
        changed = self.occupancy.observe(np.where(stocked, STOCKED, EMPTY), t_s)
        for i in changed:
            name = _STATE_NAME[int(self.occupancy.state[i])]
            out.changes.append(
                SlotChange(self.slot_ids[i], "state", name, float(self.occupancy.since[i]), t_s)
            )
        emptied = changed[self.occupancy.state[changed] == EMPTY]
        self.identity.reset(emptied)  # the next product there is identified afresh
        if self.classifier is not None and frame.image is not None and stocked.any():
            self._observe_identity(frame.image, product_px, match, t_s, out)
        return out

    def _observe_identity(
        self,
        image: npt.NDArray[np.uint8],
        product_px: npt.NDArray[np.float32],
        match: npt.NDArray[np.intp],
        t_s: float,
        out: ShelfUpdate,
    ) -> None:
        assert self.classifier is not None
        slots = np.flatnonzero(match >= 0)
        labels, scores = self.classifier.classify(image, product_px[match[slots]])
        values = np.full(len(self.slot_ids), UNKNOWN, np.int64)
        seen = np.zeros(len(self.slot_ids), bool)
        sure = scores >= self.config.classifier_min_score
        values[slots[sure]] = labels[sure]
        seen[slots[sure]] = True
        for i in self.identity.observe(values, t_s, seen):
            name = self.classifier.classes[int(self.identity.state[i])]
            out.changes.append(
                SlotChange(self.slot_ids[i], "product", name, float(self.identity.since[i]), t_s)
            )

    # -- state ----------------------------------------------------------------------------

    @property
    def stock_level(self) -> float | None:
        """Fraction of slots stocked (0-1), None until every slot's state is known."""
        state = self.occupancy.state
        if (state == UNKNOWN).any():
            return None
        return float(np.count_nonzero(state == STOCKED)) / len(state)

    @property
    def status(self) -> ShelfState:
        """``out_of_stock`` (level 0), ``low_stock`` (below ``low_stock_below``), ``ok``, or
        ``unknown`` while some slot's state is."""
        level = self.stock_level
        if level is None:
            return "unknown"
        if level <= 0.0:
            return "out_of_stock"
        return "low_stock" if level < self.config.low_stock_below else "ok"

    def slots(self) -> list[SlotView]:
        """Every slot's held state now."""
        out = []
        for i, sid in enumerate(self.slot_ids):
            code = int(self.occupancy.state[i])
            state = _STATE_NAME[code]
            seen = None
            ident = int(self.identity.state[i])
            if state == "stocked" and ident >= 0 and self.classifier is not None:
                seen = self.classifier.classes[ident]
            planned = self.products[i]
            since = float(self.occupancy.since[i])
            out.append(
                SlotView(
                    slot_id=sid,
                    state=state,
                    product=planned,
                    seen_product=seen,
                    misplaced=seen is not None and planned is not None and seen != planned,
                    since_s=since,
                    empty_since_s=since if state == "empty" else None,
                )
            )
        return out
