"""The prediction API: ``fkp.load_model()`` and ``model.predict(image, boxes)``.

    >>> model = fkp.load_model()                  # the default model shipped in the package
    >>> keypoints = model.predict(image, boxes)   # (N, 68, 2) pixels of `image`, x then y

``image`` is (H, W, 3) uint8 RGB; ``boxes`` is (N, 4) axis-aligned face boxes ``x, y, w, h`` in
pixels, of any style: tight around the 68 points or a detector's looser box (the model was trained
with the box styles of :mod:`fkp.calibration`). Each box becomes a square grayscale crop (see
:func:`fkp.geometry.box_affine`), all crops go through the network in one batch, and the points
are mapped back to the image.

Roll normalisation: the model does not care how the head is rolled. A first pass finds the
points; when their eye line is tilted by more than :data:`ROLL_THRESHOLD` degrees from the crop's
axes, a second pass runs on a crop turned so that the face is upright and framed by the points
found (:func:`fkp.geometry.upright_affine`), and its points are mapped back. A detector that knows
each face's roll (YuNet's eye points) can pass it as ``angles``, so the first pass is already
upright.

Weights are stored as safetensors, with the model config and preprocessing in its metadata: no
pickled code is ever loaded.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch
from torch import nn

from fkp import geometry
from fkp.landmarks import NUM_KEYPOINTS
from fkp.models import ModelConfig, build_model, config_from_dict, config_to_dict

DEFAULT_BOX_SCALE = 1.35
"""Crop side = the box's longer side x this: room for the whole face around a tight box."""
DEFAULT_WEIGHTS = "default.safetensors"
FORMAT_VERSION = "1"
DEFAULT_REFINE = 0
"""Extra passes for every face: each crops again, upright, around the points found by the pass
before (:func:`fkp.geometry.upright_affine`), whatever the roll. Off by default: faces whose
first pass finds them upright within :data:`ROLL_THRESHOLD` keep it."""
ROLL_THRESHOLD = 10.0
"""Degrees of roll, in the first pass's crop, above which a face gets an upright second pass."""
Backend = Literal["torch", "onnx"]


class WeightsError(ValueError):
    """A weights file that is missing, unreadable or not an fkp model."""


class KeypointModel:
    """A keypoint network with its preprocessing: the object :func:`load_model` returns.

    Args:
        net: the network (see :mod:`fkp.models`); put in eval mode here.
        config: its model config.
        box_scale: crop side as a multiple of the face box's longer side.
        metadata: free-form facts stored with the weights (training figures, provenance).
    """

    def __init__(
        self,
        net: nn.Module,
        config: ModelConfig,
        box_scale: float = DEFAULT_BOX_SCALE,
        metadata: dict | None = None,
        refine: int = DEFAULT_REFINE,
    ) -> None:
        self.net = net.eval()
        self.config = config
        self.box_scale = box_scale
        self.refine = refine
        self.metadata = dict(metadata or {})
        self._onnx_session: Any = None

    @property
    def input_size(self) -> int:
        """Side S of the square crop the network takes, in pixels."""
        return self.config.input_size

    @property
    def backend(self) -> Backend:
        """``"onnx"`` after :meth:`use_onnx`, else ``"torch"``."""
        return "onnx" if self._onnx_session is not None else "torch"

    def __repr__(self) -> str:
        return f"KeypointModel({self.config.architecture}, input {self.input_size}px, backend={self.backend})"

    def crops(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cut the model's input crops out of ``image``.

        Args:
            image: (H, W, 3) uint8 RGB, or (H, W) uint8 grayscale.
            boxes: (N, 4) face boxes x, y, w, h in pixels.

        Returns:
            (N, S, S) uint8 grayscale crops and their (N, 2, 3) image -> crop affine maps.
        """
        image = np.asarray(image)
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        affines = np.stack([geometry.box_affine(box, self.input_size, self.box_scale) for box in boxes]) if len(boxes) else np.zeros((0, 2, 3))
        crops = np.stack([geometry.warp_crop(gray, affine, self.input_size) for affine in affines]) if len(boxes) else np.zeros((0, self.input_size, self.input_size), np.uint8)
        return crops, affines

    def predict_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S) uint8 crops -> (N, 68, 2) points in normalised crop coordinates [-1, 1]."""
        batch = geometry.standardize(crops)[:, None]  # (N, S, S) -> (N, 1, S, S)
        if self._onnx_session is not None:
            return self._onnx_session.run(None, {"crops": batch})[0]
        with torch.inference_mode():
            return self.net(torch.from_numpy(batch)).numpy()

    def predict(self, image: np.ndarray, boxes: np.ndarray, angles: np.ndarray | None = None) -> np.ndarray:
        """Keypoints of the faces in ``boxes``, whatever their roll.

        Args:
            image: (H, W, 3) uint8 RGB, or (H, W) uint8 grayscale.
            boxes: (N, 4) axis-aligned face boxes x, y, w, h in pixels (tight or detector-style).
            angles: optional (N,) roll of each face in degrees, as :func:`fkp.geometry.roll_degrees`
                measures it (NaN where unknown): the first pass then crops the face upright.

        Returns:
            (N, 68, 2) float32 keypoints in pixels of ``image``, x then y.
        """
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, NUM_KEYPOINTS, 2), dtype=np.float32)
        first = np.zeros(len(boxes)) if angles is None else np.nan_to_num(np.asarray(angles, dtype=np.float64).reshape(-1))
        if len(first) != len(boxes):
            raise ValueError(f"got {len(boxes)} boxes but {len(first)} angles")
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        affines = np.stack([geometry.box_affine(box, self.input_size, self.box_scale, angle) for box, angle in zip(boxes, first)])
        points = self._run(gray, affines)
        for extra in range(1 + self.refine):
            roll = geometry.keypoints_roll(points)  # (N,) degrees
            tilt = np.abs((roll - first + 180.0) % 360.0 - 180.0)  # roll left in the crop
            again = np.flatnonzero((tilt > ROLL_THRESHOLD) | (extra < self.refine))
            if len(again) == 0:
                break
            affines = np.stack([geometry.upright_affine(points[i], roll[i], self.input_size, self.box_scale) for i in again])
            points[again] = self._run(gray, affines)
            first = roll
        return points

    def _run(self, gray: np.ndarray, affines: np.ndarray) -> np.ndarray:
        """Cut the crops that (N, 2, 3) ``affines`` describe and return their points in image pixels."""
        crops = np.stack([geometry.warp_crop(gray, affine, self.input_size) for affine in affines])
        return geometry.crop_to_image(self.predict_crops(crops), affines, self.input_size)

    def save(self, path: str | os.PathLike[str], extra: dict[str, Any] | None = None, half: bool = False) -> None:
        """Write the weights and config as safetensors (atomically).

        Args:
            path: the ``.safetensors`` file to write.
            extra: facts to add to the stored metadata (see :attr:`metadata`).
            half: store floating-point tensors as float16 (half the size; loading casts them
                back to float32, which changes predictions by far less than a pixel).
        """
        from safetensors.torch import save_file

        metadata = {
            "format": "fkp",
            "format_version": FORMAT_VERSION,
            "model_config": json.dumps(config_to_dict(self.config)),
            "box_scale": repr(self.box_scale),
            "info": json.dumps({**self.metadata, **(extra or {})}),
        }
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        state = {key: value.detach().cpu().contiguous() for key, value in self.net.state_dict().items()}
        if half:
            state = {key: value.half() if value.is_floating_point() else value for key, value in state.items()}
        save_file(state, str(tmp), metadata=metadata)
        os.replace(tmp, path)

    def use_onnx(self, threads: int = 1) -> KeypointModel:
        """Run the network with onnxruntime from now on (faster on CPU); returns ``self``.

        Needs onnxruntime (a dependency of fkp; optional when fkp is installed without it).
        """
        import onnxruntime

        from fkp.export import onnx_bytes

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._onnx_session = onnxruntime.InferenceSession(
            onnx_bytes(self), options, providers=["CPUExecutionProvider"]
        )
        return self

    def use_torch(self) -> KeypointModel:
        """Run the network with PyTorch (the default); returns ``self``."""
        self._onnx_session = None
        return self


def default_weights_path() -> Path:
    """Where the shipped default model lies inside the installed package."""
    return Path(str(resources.files("fkp") / "weights" / DEFAULT_WEIGHTS))


def load_model(
    path: str | os.PathLike[str] | None = None, backend: Backend | Literal["auto"] = "auto", threads: int = 1
) -> KeypointModel:
    """Load the shipped default model, or a model file written by ``fkp train``.

    Args:
        path: ``None`` for the default model; a ``.safetensors`` file (``best.safetensors`` of
            a run) or a training checkpoint ``last.pt`` (loaded with ``weights_only=True``).
        backend: ``"torch"``, ``"onnx"`` (needs onnxruntime), or ``"auto"``: onnx when it is
            installed, else torch.
        threads: onnxruntime's CPU threads (PyTorch follows ``torch.set_num_threads``).

    Raises:
        WeightsError: the file is missing or is not an fkp model.
    """
    path = Path(path) if path is not None else default_weights_path()
    if not path.is_file():
        raise WeightsError(f"{path}: no such model file")
    if path.suffix == ".pt":
        model = _load_checkpoint(path)
    else:
        model = _load_safetensors(path)
    if backend == "onnx" or (backend == "auto" and _has_onnxruntime()):
        model.use_onnx(threads=threads)
    return model


def _load_safetensors(path: Path) -> KeypointModel:
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise WeightsError(f"{path}: not a safetensors weights file ({error})") from error
    if metadata.get("format") != "fkp":
        raise WeightsError(f"{path}: a safetensors file, but not an fkp model (no fkp metadata)")
    config = config_from_dict(json.loads(metadata["model_config"]))
    return _build(path, config, state, float(metadata.get("box_scale", DEFAULT_BOX_SCALE)), json.loads(metadata.get("info", "{}")))


def _load_checkpoint(path: Path) -> KeypointModel:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        config = config_from_dict(checkpoint["model_config"])
        box_scale = float(checkpoint["train_config"]["box_scale"])
        state = checkpoint["model"]
    except Exception as error:  # torch raises many kinds for a bad file
        raise WeightsError(f"{path}: not an fkp training checkpoint ({type(error).__name__}: {error})") from error
    return _build(path, config, state, box_scale, {"epoch": checkpoint.get("epoch")})


def _build(path: Path, config: ModelConfig, state: dict[str, torch.Tensor], box_scale: float, info: dict) -> KeypointModel:
    net = build_model(config)
    try:
        net.load_state_dict(state)
    except RuntimeError as error:
        raise WeightsError(f"{path}: weights do not fit a {config.architecture} model: {str(error).splitlines()[0]}") from error
    return KeypointModel(net, config, box_scale, info)


def _has_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True
