"""Benchmark peer (AGPL, benchmark only): ultralytics YOLO.track with ByteTrack.

Runs in an environment that has ultralytics (``pip install 'retail-cv[export]'``); prints one
JSON object: frames, seconds, fps, people per frame, distinct ids.
Usage: python benchmarks/peer_ultralytics.py MODEL_DIR VIDEO
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    from ultralytics import YOLO

    model_dir, video = sys.argv[1], sys.argv[2]
    model = YOLO(model_dir, task="detect")
    # Warm up outside the timed loop (model compile), as ours does at load.
    next(
        iter(
            model.track(
                source=video, tracker="bytetrack.yaml", stream=True, verbose=False, classes=[0]
            )
        )
    )
    model = YOLO(model_dir, task="detect")
    counts: list[int] = []
    ids: set[int] = set()
    start = time.perf_counter()
    for result in model.track(
        source=video, tracker="bytetrack.yaml", stream=True, verbose=False, classes=[0]
    ):
        boxes = result.boxes
        if boxes is not None and boxes.id is not None:
            ids.update(int(i) for i in boxes.id.tolist())
            counts.append(len(boxes.id))
        else:
            counts.append(0)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "frames": len(counts),
                "seconds": seconds,
                "fps": len(counts) / seconds,
                "counts": counts,
                "ids": len(ids),
            }
        )
    )


if __name__ == "__main__":
    main()
