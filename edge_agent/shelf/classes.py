"""Which of the detector's classes are people and which are products on a shelf.

The detector keeps the people classes of the store config (``model.classes``) plus the
product classes of every monitored shelf; the tracker and the people analytics get the people
boxes only, the shelf monitors get every box.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from edge_agent.detect.detections import Detections
from edge_agent.errors import ConfigError


def _key(name: str) -> str:
    return name.replace("_", " ")  # OpenVINO labels write spaces as underscores


class DetectorClasses:
    """The detector's class list (model order) and the names among it that are people.

    Raises:
        ConfigError: a people class the detector does not know.
    """

    def __init__(self, names: Sequence[str], people: Sequence[str] = ("person",)) -> None:
        self.names = tuple(names)
        self.people = tuple(people)
        self.people_ids = self.ids(self.people)

    def ids(self, wanted: Iterable[str]) -> npt.NDArray[np.intp]:
        """Indices of ``wanted`` names in the class list.

        Raises:
            ConfigError: a name the detector does not know (the message lists some it does).
        """
        known = {_key(c): i for i, c in enumerate(self.names)}
        wanted = list(wanted)
        missing = [n for n in wanted if _key(n) not in known]
        if missing:
            raise ConfigError(
                f"the detector has no class {missing}; it knows {list(self.names[:12])}"
                f"{'…' if len(self.names) > 12 else ''}"
            )
        return np.asarray([known[_key(n)] for n in wanted], np.intp)

    def people_only(self, detections: Detections) -> Detections:
        """The people boxes of ``detections`` (what the tracker gets)."""
        if len(detections) == 0:
            return detections
        keep = np.isin(detections.class_id, self.people_ids)
        return detections if keep.all() else detections.select(keep)


def detector_class_names(people: Sequence[str], shelf_classes: Iterable[str]) -> tuple[str, ...]:
    """The class filter for the detector: the people classes, then each shelf product class
    not already there (order kept, no repeats)."""
    out = list(people)
    for name in shelf_classes:
        if _key(name) not in {_key(n) for n in out}:
            out.append(name)
    return tuple(out)
