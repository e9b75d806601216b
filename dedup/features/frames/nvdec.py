"""NVDEC set-up: which device decodes, and opening a file for decoding there.

Where the worker embeds on a CUDA GPU, H.264 (and the other codecs NVDEC knows) is decoded there
too, the same pictures at a fraction of the CPU time: on a GPU box the CPUs' decoding was what
limited throughput (docs/benchmarks.md, GPU)."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import ExtractionError
from ..probe import main_video_stream

logger = logging.getLogger(__name__)


@dataclass
class NvdecState:
    """What this process holds and has learnt about NVDEC: one per process, as a CUDA context is."""

    # retained for the process's life: no CUDA context made and destroyed per file
    context: Any = None
    # why this process could not decode on the GPU, once it failed (logged once; later videos
    # decode on the CPU without trying again)
    failure: str | None = None


STATE = NvdecState()


def pick_decode_device(setting: str, embeds_on: str) -> str:
    """The decoding device, "cpu" or "cuda", from ASTRADUP_DECODE_DEVICE: `auto` decodes on the GPU when the worker
    embeds on one (it holds the CUDA context NVDEC then shares), else on the CPU."""
    if setting == "auto":
        return "cuda" if embeds_on == "cuda" else "cpu"
    if setting not in ("cpu", "cuda"):
        raise ValueError(f"ASTRADUP_DECODE_DEVICE must be auto, cpu or cuda, not '{setting}'")
    return setting


CU_CTX_SCHED_BLOCKING_SYNC = 0x04


def _cuda_context_current() -> None:
    """Make the GPU's primary CUDA context (torch's) current on this thread unless one is, so that
    FFmpeg decodes in it (`current_ctx`) and opening a file creates no CUDA context of its own.

    FFmpeg's `primary_ctx` option cannot be used beside torch: it refuses a primary context that
    is already active with flags other than blocking sync, and torch's is (seen on an H100:
    "Operation not supported"). Blocking sync is set here instead, once per process: with the
    default flags a process waiting for NVDEC's next picture spins its core, which on a box of
    many worker processes is CPU the other stages need."""
    import ctypes

    cuda = ctypes.CDLL("libcuda.so.1")
    if STATE.context is None:
        ctx, device = ctypes.c_void_p(), ctypes.c_int()
        steps: tuple[tuple[str, Callable[[], int]], ...] = (
            ("cuInit", lambda: cuda.cuInit(0)),
            ("cuDeviceGet", lambda: cuda.cuDeviceGet(ctypes.byref(device), 0)),
            # CUDA >= 11 allows this on an active context; the flags govern every later wait
            (
                "cuDevicePrimaryCtxSetFlags",
                lambda: cuda.cuDevicePrimaryCtxSetFlags_v2(device, CU_CTX_SCHED_BLOCKING_SYNC),
            ),
            ("cuDevicePrimaryCtxRetain", lambda: cuda.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), device)),
        )
        for name, call in steps:
            status = call()
            if status != 0:
                raise OSError(f"{name} failed with CUDA error {status}")
        STATE.context = ctx
    current = ctypes.c_void_p()
    if cuda.cuCtxGetCurrent(ctypes.byref(current)) == 0 and current.value:
        return
    status = cuda.cuCtxSetCurrent(STATE.context)
    if status != 0:
        raise OSError(f"cuCtxSetCurrent failed with CUDA error {status}")


def open_video(path: Path, device: str, *, download_all: bool = False) -> tuple[Any, bool]:
    """(container, whether NVDEC was set up for its video stream): the file opened for decoding
    on `device`.

    NVDEC decodes in the CUDA context torch uses (see `_cuda_context_current`); its pictures stay
    on the GPU until `decode_frames` scales one it samples, which downloads that one (61 of the
    ~900 a minute of 30 fps video decodes with non-reference frames skipped). `download_all`
    downloads each decoded picture as PyAV does by default, for scripts/gpu_bench.py to compare
    the two on one machine. A stream NVDEC cannot take (a codec or profile it lacks) is decoded
    by FFmpeg on the CPU; a GPU that cannot be opened at all leaves this process on the CPU."""
    import av

    gpu_error = None
    if device == "cuda" and STATE.failure is None:
        from av.codec.hwaccel import HWAccel

        # is_hw_owned would otherwise add primary_ctx=1, which fails beside torch's context
        options: dict[str, object] = {"current_ctx": "1", "primary_ctx": "0"}
        nvdec = HWAccel("cuda", allow_software_fallback=True, options=options, is_hw_owned=not download_all)
        try:
            _cuda_context_current()
            container = av.open(str(path), hwaccel=nvdec)
        except (av.error.FFmpegError, OSError) as exc:
            gpu_error = exc  # the GPU, or the file itself: opening it without the GPU tells which
        else:
            video = main_video_stream(container)
            return container, bool(video is not None and video.codec_context.is_hwaccel)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise ExtractionError(f"cannot open the video: {exc}") from exc
    if gpu_error is not None:
        STATE.failure = f"{type(gpu_error).__name__}: {gpu_error}"
        logger.warning("decoding on the CPU: NVDEC could not be opened (%s)", STATE.failure)
    return container, False
