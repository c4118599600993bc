"""Inference runtimes: ONNX Runtime (any execution provider) and OpenVINO (IR or ONNX).

A backend takes a float32 NCHW batch and returns the model's outputs. ``infer`` may be called
from several threads at once: ONNX Runtime sessions are thread-safe, and the OpenVINO backend
keeps one infer request per thread. ``parallel_requests`` says how many calls can usefully run
at the same time (throughput mode); one request uses all threads (latency mode).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from edge_agent.errors import ModelError

log = logging.getLogger(__name__)

Mode = Literal["latency", "throughput"]

# Preference order for `auto`: fastest first; CPU is always last and always present.
PROVIDER_PREFERENCE = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "OpenVINOExecutionProvider",
    "CPUExecutionProvider",
)


class InferenceBackend(Protocol):
    """What the detector needs from a runtime."""

    name: str
    input_shape: tuple[int | None, ...]
    parallel_requests: int

    @property
    def dynamic_batch(self) -> bool:
        """True when the model accepts any batch size."""
        ...

    def infer(self, batch: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        """Run the model on a (B, 3, H, W) batch; returns every output in model order."""
        ...


def choose_providers(requested: str | list[str], available: list[str]) -> list[str]:
    """Execution providers to use, in order.

    ``auto`` takes every installed provider in ``PROVIDER_PREFERENCE`` order. An explicit list
    must name only installed providers: a missing GPU provider is an error, not a silent
    fallback to the CPU.
    """
    if requested == "auto":
        return [p for p in PROVIDER_PREFERENCE if p in available] or ["CPUExecutionProvider"]
    wanted = [requested] if isinstance(requested, str) else list(requested)
    missing = [p for p in wanted if p not in available]
    if missing:
        raise ModelError(
            f"execution provider(s) {missing} are not installed; available: {available}. "
            "Use providers: auto, or install the matching onnxruntime build."
        )
    return wanted


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class OnnxRuntimeBackend:
    """ONNX Runtime session(s). Throughput mode runs one single-threaded session per core."""

    def __init__(
        self, path: Path, providers: str | list[str] = "auto", mode: Mode = "latency"
    ) -> None:
        import onnxruntime as ort

        chosen = choose_providers(providers, ort.get_available_providers())
        cores = _cpu_count()
        self.parallel_requests = cores if mode == "throughput" else 1
        threads = 1 if mode == "throughput" else cores
        self._sessions: list[Any] = []
        for _ in range(self.parallel_requests):
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            try:
                self._sessions.append(
                    ort.InferenceSession(str(path), sess_options=opts, providers=chosen)
                )
            except Exception as exc:  # ORT raises several unrelated types for bad files
                raise ModelError(f"cannot load ONNX model {path}: {exc}") from exc
        first = self._sessions[0]
        self._input = first.get_inputs()[0].name
        shape = first.get_inputs()[0].shape
        self.input_shape = tuple(d if isinstance(d, int) else None for d in shape)
        self.name = f"onnxruntime[{first.get_providers()[0]}]"
        self._next = 0
        self._lock = threading.Lock()
        self._local = threading.local()
        log.info("loaded %s with %s (%s mode)", path.name, self.name, mode)

    @property
    def dynamic_batch(self) -> bool:
        """True when the model accepts any batch size."""
        return self.input_shape[0] is None

    def _session(self) -> Any:
        sess = getattr(self._local, "session", None)
        if sess is None:
            with self._lock:
                sess = self._sessions[self._next % len(self._sessions)]
                self._next += 1
            self._local.session = sess
        return sess

    def infer(self, batch: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        """Run the model on a (B, 3, H, W) batch."""
        outputs: list[npt.NDArray[np.float32]] = self._session().run(None, {self._input: batch})
        return outputs


class OpenVinoBackend:
    """OpenVINO runtime for IR (.xml + .bin) or ONNX models, one infer request per thread."""

    def __init__(
        self, path: Path, device: str = "CPU", mode: Mode = "latency", batch: int = 1
    ) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise ModelError(
                f"{path.name} needs the OpenVINO runtime: pip install 'retail-cv[openvino]'"
            ) from exc
        core = ov.Core()
        hint = "THROUGHPUT" if mode == "throughput" else "LATENCY"
        try:
            model = core.read_model(str(path))
            if batch > 1 and model.input(0).get_partial_shape()[0].is_static:
                # Ask for a dynamic batch axis; the detector verifies the result on load.
                shape = model.input(0).get_partial_shape()
                shape[0] = ov.Dimension(-1)
                model.reshape({0: shape})
            # Pin f32: on CPUs with native bf16 (AMX, some AVX512_BF16 parts) OpenVINO otherwise
            # picks bf16 by default, and boxes drift away from the ONNX Runtime result.
            config = {"PERFORMANCE_HINT": hint}
            if device.upper().startswith("CPU"):
                config["INFERENCE_PRECISION_HINT"] = "f32"
            self._compiled = core.compile_model(model, device, config)
        except RuntimeError as exc:
            raise ModelError(f"OpenVINO cannot load {path} on {device}: {exc}") from exc
        self.parallel_requests = int(
            self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
        )
        port = self._compiled.input(0)
        pshape = port.get_partial_shape()
        self.input_shape = tuple(d.get_length() if d.is_static else None for d in pshape)
        self.name = f"openvino[{device},{hint.lower()}]"
        self._local = threading.local()
        log.info(
            "loaded %s with %s, %d parallel requests", path.name, self.name, self.parallel_requests
        )

    @property
    def dynamic_batch(self) -> bool:
        """True when the model accepts any batch size."""
        return self.input_shape[0] is None

    def infer(self, batch: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        """Run the model on a (B, 3, H, W) batch."""
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._compiled.create_infer_request()
            self._local.request = request
        result = request.infer({0: batch}, share_inputs=True)
        return [np.asarray(result[out]) for out in self._compiled.outputs]


def open_backend(
    path: Path,
    runtime: Literal["auto", "onnxruntime", "openvino"] = "auto",
    providers: str | list[str] = "auto",
    device: str = "CPU",
    mode: Mode = "latency",
    batch: int = 1,
) -> InferenceBackend:
    """Open ``path`` with the runtime the config asks for (``auto``: by file type).

    ``batch`` > 1 asks OpenVINO to give a static batch-1 model a dynamic batch axis (the
    detector checks on load that batched results equal single-frame ones).
    """
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    if runtime == "openvino" or (runtime == "auto" and path.suffix.lower() == ".xml"):
        return OpenVinoBackend(path, device=device, mode=mode, batch=batch)
    if path.suffix.lower() == ".xml":
        raise ModelError(f"{path} is an OpenVINO IR model: set model.runtime to openvino or auto")
    return OnnxRuntimeBackend(path, providers=providers, mode=mode)
