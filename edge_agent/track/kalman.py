"""Constant-velocity Kalman filter over box state, vectorised over all tracks of a camera.

State per track (8): ``cx, cy, a, h, vcx, vcy, va, vh`` where ``cx, cy`` is the box centre and
``h`` its height in pixels, ``a = w / h`` the aspect ratio, and the ``v*`` their change per
frame. Noise is proportional to the box height, as in SORT/DeepSORT/ByteTrack, so a small
distant person and a large close one are tracked with the same relative uncertainty.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

_STD_POSITION = 1.0 / 20
_STD_VELOCITY = 1.0 / 160

_MOTION = np.eye(8)
_MOTION[:4, 4:] = np.eye(4)  # one frame per step
_MOTION_T = _MOTION.T.copy()


def xyxy_to_xyah(xyxy: npt.NDArray[np.floating]) -> F64:
    """Box corners (N, 4) in pixels to centre x, centre y, aspect w/h, height (N, 4)."""
    b = np.asarray(xyxy, dtype=np.float64)
    w = b[:, 2] - b[:, 0]
    h = np.maximum(b[:, 3] - b[:, 1], 1e-6)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, w / h, h], axis=1)


def xyah_to_xyxy(xyah: npt.NDArray[np.floating]) -> F64:
    """Centre x, centre y, aspect w/h, height (N, 4+) to box corners (N, 4) in pixels."""
    s = np.asarray(xyah, dtype=np.float64)
    h = s[:, 3]
    w = s[:, 2] * h
    return np.stack([s[:, 0] - w / 2, s[:, 1] - h / 2, s[:, 0] + w / 2, s[:, 1] + h / 2], axis=1)


def initiate(xyah: F64) -> tuple[F64, F64]:
    """Mean (N, 8) and covariance (N, 8, 8) of new tracks from their first box (N, 4) in xyah."""
    n = len(xyah)
    mean = np.zeros((n, 8))
    mean[:, :4] = xyah
    h = xyah[:, 3:4]
    unit = np.array([2 * _STD_POSITION] * 2 + [0.0] + [2 * _STD_POSITION])
    vel = np.array([10 * _STD_VELOCITY] * 2 + [0.0] + [10 * _STD_VELOCITY])
    std = np.concatenate([unit * h, vel * h], axis=1)
    std[:, 2] = 1e-2
    std[:, 6] = 1e-5
    cov = np.zeros((n, 8, 8))
    idx = np.arange(8)
    cov[:, idx, idx] = std**2
    return mean, cov


def predict(mean: F64, cov: F64) -> tuple[F64, F64]:
    """Advance all tracks by one frame; returns new (mean, cov), inputs untouched."""
    h = mean[:, 3:4]
    pos = np.array([_STD_POSITION, _STD_POSITION, 0.0, _STD_POSITION]) * h
    vel = np.array([_STD_VELOCITY, _STD_VELOCITY, 0.0, _STD_VELOCITY]) * h
    var = np.concatenate([pos, vel], axis=1) ** 2
    var[:, 2] = 1e-4
    var[:, 6] = 1e-10
    new_mean = mean @ _MOTION_T
    new_cov = _MOTION @ cov @ _MOTION_T
    idx = np.arange(8)
    new_cov[:, idx, idx] += var
    return new_mean, new_cov


def update(mean: F64, cov: F64, xyah: F64) -> tuple[F64, F64]:
    """Correct tracks (N, 8), (N, 8, 8) with their matched boxes (N, 4) in xyah."""
    h = mean[:, 3]
    r = np.stack([_STD_POSITION * h, _STD_POSITION * h, np.full_like(h, 1e-1), _STD_POSITION * h])
    s = cov[:, :4, :4].copy()
    idx = np.arange(4)
    s[:, idx, idx] += (r**2).T
    # Kalman gain K = P H^T S^-1, computed as solve(S, H P)^T since S is symmetric.
    gain = np.linalg.solve(s, cov[:, :4, :]).transpose(0, 2, 1)
    innovation = xyah - mean[:, :4]
    new_mean = mean + np.einsum("nij,nj->ni", gain, innovation)
    new_cov = cov - gain @ s @ gain.transpose(0, 2, 1)
    return new_mean, new_cov
