"""The prediction API: ``fkp.load_model()`` and ``model.predict(image, boxes)``.

    >>> model = fkp.load_model()                  # the default model shipped in the package
    >>> keypoints = model.predict(image, boxes)   # (N, 68, 2) pixels of `image`, x then y

``image`` is (H, W, 3) uint8 RGB; ``boxes`` is (N, 4) axis-aligned face boxes ``x, y, w, h`` in
pixels, of any style: tight around the 68 points or a detector's looser box (the model was trained
with the box styles of :mod:`fkp.calibration`). Each box becomes a square grayscale crop (see
:func:`fkp.geometry.box_affine`), all crops go through the network in one batch, and the points
are mapped back to the image.

Roll normalisation (when a face gets an upright second pass) is :class:`fkp.predictor.SecondPass`'s rule.

Weights are stored as safetensors, with the model config and preprocessing in its metadata: no
pickled code is ever loaded. Beside each ``NAME.safetensors`` lies ``NAME.onnx``, the same network
exported for onnxruntime, whose metadata records the sha256 of the safetensors file it was made
from (the format: :mod:`fkp.model_file`). Inference runs that ONNX file and imports no PyTorch:
this module needs only NumPy, OpenCV and onnxruntime. The PyTorch side (building the network,
saving, checkpoints, export) is :mod:`fkp.weights_io` and :mod:`fkp.export`, imported only when a
model needs it; neither imports this module.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import cv2
import numpy as np

from fkp import geometry
from fkp.geometry import DEFAULT_BOX_SCALE
from fkp.landmarks import NUM_KEYPOINTS
from fkp.model_config import ModelConfig
from fkp.model_file import (
    ModelFile,
    WeightsError,
    check_onnx_pair,
    onnx_metadata,
    onnx_session,
    parse_metadata,
    read_onnx_metadata,
    read_safetensors_metadata,
)
from fkp.predictor import SecondPass

if TYPE_CHECKING:
    from torch import nn

DEFAULT_WEIGHTS = "default.safetensors"
Backend = Literal["torch", "onnx"]


class KeypointModel:
    """A keypoint network with its preprocessing: the object :func:`load_model` returns.

    It runs the network with PyTorch until :meth:`use_onnx` switches it to onnxruntime (what
    :func:`load_model` picks where it can); only the PyTorch backend, :attr:`net` and :meth:`save`
    import torch.

    Args:
        net: the PyTorch network (see :mod:`fkp.models`), put in eval mode here; ``None`` when
            the model runs from an ONNX file (:func:`load_model` builds it on first use of
            :attr:`net`, from :attr:`weights_path`).
        config: its model config.
        box_scale: crop side as a multiple of the face box's longer side.
        metadata: free-form facts stored with the weights (training figures, provenance).
        second_pass: when a face gets an upright second pass (:class:`SecondPass`).
    """

    def __init__(
        self,
        net: nn.Module | None,
        config: ModelConfig,
        box_scale: float = DEFAULT_BOX_SCALE,
        metadata: dict | None = None,
        second_pass: SecondPass = SecondPass(),
    ) -> None:
        self._net = None if net is None else net.eval()
        self.config = config
        self.box_scale = box_scale
        self.second_pass = second_pass
        self.metadata = dict(metadata or {})
        self.weights_path: Path | None = None
        """The safetensors file the model was loaded from (None for an in-memory network)."""
        self.onnx_path: Path | None = None
        """The ONNX file that :meth:`use_onnx` runs (None: exported from :attr:`net` instead)."""
        self._onnx_session: Any = None

    @property
    def net(self) -> nn.Module:
        """The PyTorch network; imports torch, and reads :attr:`weights_path` on first use."""
        if self._net is None:
            if self.weights_path is None:
                raise WeightsError(f"{self.onnx_path}: an ONNX model alone has no PyTorch network")
            from fkp.weights_io import read_network

            self._net = read_network(self.weights_path, self.config)
        return self._net

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

    def crops(
        self, image: np.ndarray, boxes: np.ndarray, angles: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cut the model's first-pass input crops out of ``image``.

        Args:
            image: (H, W, 3) uint8 RGB, or (H, W) uint8 grayscale.
            boxes: (N, 4) face boxes x, y, w, h in pixels.
            angles: optional (N,) roll of each face in degrees (:func:`fkp.geometry.roll_degrees`):
                each crop is turned so that such a face appears upright.

        Returns:
            (N, S, S) uint8 grayscale crops and their (N, 2, 3) image -> crop affine maps.
        """
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        angles = np.zeros(len(boxes)) if angles is None else angles
        affines = np.array(
            [geometry.box_affine(box, self.input_size, self.box_scale, angle) for box, angle in zip(boxes, angles)]
        ).reshape(-1, 2, 3)
        return self._warp(np.asarray(image), affines), affines

    def _warp(self, image: np.ndarray, affines: np.ndarray) -> np.ndarray:
        """(N, S, S) uint8 grayscale crops of an RGB or grayscale image, one per (N, 2, 3) image -> crop map.

        The crops are cut from the colour image and then turned grayscale: the same pixels as
        cutting them from a grayscale copy (within one grey level of rounding), without
        converting the whole photo.
        """
        size = self.input_size
        crops = np.empty((len(affines), size, size), dtype=np.uint8)
        for i, affine in enumerate(affines):
            crop = geometry.warp_crop(image, affine, size)
            crops[i] = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
        return crops

    @property
    def conventions(self) -> tuple[str, ...]:
        """The labelling conventions (:data:`fkp.conventions.CONVENTIONS`) the model answers in,
        one per heatmap head; the first is its default. Empty when the model does not say.

        A single-head model speaks the convention it was trained to (``metadata["labels"]``).
        """
        heads = self.config.heads
        if len(heads) > 1:
            return heads
        labels = self.metadata.get("labels")
        return (labels,) if isinstance(labels, str) else heads

    def head_of(self, labels: str | None) -> int:
        """The index of the head that answers in convention ``labels`` (``None``: the default, 0).

        Raises:
            ValueError: (one line) the model has no head for that convention.
        """
        if labels is None:
            return 0
        if labels not in self.conventions:
            raise ValueError(f"this model has no {labels!r} head; it answers in {list(self.conventions)}")
        return self.conventions.index(labels)

    def predict_crops(self, crops: np.ndarray, head: int = 0) -> np.ndarray:
        """(N, S, S) uint8 crops -> (N, 68, 2) points in normalised crop coordinates [-1, 1].

        ``head``: which heatmap head answers, by its index in :attr:`conventions`.
        """
        batch = geometry.standardize(crops)[:, None]  # (N, S, S) -> (N, 1, S, S)
        if self._onnx_session is not None:
            feeds = {"crops": batch}
            if len(self.config.heads) > 1:  # the exported graph takes a "head" input (fkp.export)
                feeds["head"] = np.array(head, dtype=np.int64)
            elif head:
                raise ValueError(f"{self.onnx_path or 'this ONNX graph'} has a single head")
            return self._onnx_session.run(None, feeds)[0]
        import torch

        with torch.inference_mode():
            crops_tensor = torch.from_numpy(batch)
            return (self.net(crops_tensor, head) if head else self.net(crops_tensor)).numpy()

    def predict(
        self, image: np.ndarray, boxes: np.ndarray, angles: np.ndarray | None = None, labels: str | None = None
    ) -> np.ndarray:
        """Keypoints of the faces in ``boxes``, whatever their roll.

        Args:
            image: (H, W, 3) uint8 RGB, or (H, W) uint8 grayscale.
            boxes: (N, 4) axis-aligned face boxes x, y, w, h in pixels (tight or detector-style).
            angles: optional (N,) roll of each face in degrees, as :func:`fkp.geometry.roll_degrees`
                measures it (NaN where unknown): the first pass then crops the face upright.
            labels: the labelling convention to answer in, one of :attr:`conventions`
                (``None``: the model's default, 300-W's for the shipped model).

        Returns:
            (N, 68, 2) float32 keypoints in pixels of ``image``, x then y.

        Raises:
            ValueError: the model has no head for ``labels``.
        """
        return self.predict_many([image], [boxes], None if angles is None else [angles], labels)[0]

    def predict_many(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[np.ndarray],
        angles: Sequence[np.ndarray | None] | None = None,
        labels: str | None = None,
    ) -> list[np.ndarray]:
        """Keypoints of the faces of several images, all faces through the network in one batch
        per pass: :meth:`predict` for each image, with the same points, in fewer network calls.

        Args:
            images: K images, each (H, W, 3) uint8 RGB or (H, W) uint8 grayscale (sizes may differ).
            boxes: K arrays of (N_k, 4) face boxes x, y, w, h in pixels of their image.
            angles: None, or K entries: (N_k,) roll of each face in degrees (NaN where unknown), or None.
            labels: the labelling convention to answer in, one of :attr:`conventions`.

        Returns:
            K arrays of (N_k, 68, 2) float32 keypoints in pixels of their image, x then y.

        Raises:
            ValueError: the model has no head for ``labels``, or the counts of images, boxes and
                angles do not match.
        """
        head = self.head_of(labels)
        if len(boxes) != len(images) or (angles is not None and len(angles) != len(images)):
            raise ValueError(f"got {len(images)} images but {len(boxes)} box arrays and angles for {len(angles or [])}")
        box_arrays = [np.asarray(b, dtype=np.float32).reshape(-1, 4) for b in boxes]
        firsts = []
        for k, found in enumerate(box_arrays):
            given = None if angles is None else angles[k]
            first = (
                np.zeros(len(found))
                if given is None
                else np.nan_to_num(np.asarray(given, dtype=np.float64).reshape(-1))
            )
            if len(first) != len(found):
                raise ValueError(f"got {len(found)} boxes but {len(first)} angles")
            firsts.append(first)
        counts = [len(found) for found in box_arrays]
        if sum(counts) == 0:
            return [np.zeros((0, NUM_KEYPOINTS, 2), dtype=np.float32) for _ in box_arrays]
        pixels = [np.asarray(image) for image in images]
        owner = np.repeat(np.arange(len(pixels)), counts)  # (N,) the image of each face
        first = np.concatenate(firsts)
        affines = np.array(
            [
                geometry.box_affine(box, self.input_size, self.box_scale, angle)
                for box, angle in zip(np.concatenate(box_arrays), first)
            ]
        ).reshape(-1, 2, 3)
        points = self._run(pixels, owner, affines, head)
        rule = self.second_pass
        for extra in range(1 + rule.extra_passes):
            roll = geometry.keypoints_roll(points)  # (N,) degrees
            tilt = np.abs((roll - first + 180.0) % 360.0 - 180.0)  # roll left in the crop
            again = np.flatnonzero((tilt > rule.roll_threshold) | (extra < rule.extra_passes))
            if len(again) == 0:
                break
            affines = np.stack(
                [geometry.upright_affine(points[i], roll[i], self.input_size, self.box_scale) for i in again]
            )
            upright = self._run(pixels, owner[again], affines, head)
            near = (tilt[again] <= rule.average_tilt)[:, None, None]  # the pass before saw a familiar tilt
            points[again] = np.where(near, (points[again] + upright) / 2, upright)
            first = roll
        return np.split(points, np.cumsum(counts)[:-1])

    def _run(self, images: list[np.ndarray], owner: np.ndarray, affines: np.ndarray, head: int = 0) -> np.ndarray:
        """Cut the crops that (N, 2, 3) ``affines`` describe, each from ``images[owner[i]]``, and
        return their points in pixels of their images (one network call)."""
        size = self.input_size
        crops = np.empty((len(affines), size, size), dtype=np.uint8)
        for i, (k, affine) in enumerate(zip(owner, affines)):
            crops[i] = self._warp(images[k], affine[None])[0]
        return geometry.crop_to_image(self.predict_crops(crops, head), affines, size)

    def save(
        self, path: str | os.PathLike[str], extra: dict[str, Any] | None = None, half: bool = False, onnx: bool = True
    ) -> None:
        """Write the weights and config as safetensors, and the ONNX file beside them (atomically).

        Needs PyTorch, safetensors and onnx (``pip install "fkp[train]"``).

        Args:
            path: the ``.safetensors`` file to write.
            extra: facts to add to the stored metadata (see :attr:`metadata`).
            half: store floating-point tensors as float16 (half the size; loading casts them
                back to float32, which changes predictions by far less than a pixel).
            onnx: also write ``path`` with the suffix ``.onnx``: the network read back from
                ``path``, exported, with the sha256 of ``path`` in its metadata.
        """
        from fkp.weights_io import save_model

        facts = ModelFile(self.config, self.box_scale, {**self.metadata, **(extra or {})})
        save_model(self.net, facts, path, half=half, onnx=onnx)

    def onnx_file_bytes(self) -> bytes:
        """:attr:`net` as the bytes of an ONNX model file, with this model's metadata and, when it was
        read from a safetensors file, that file's sha256 (:func:`fkp.model_file.onnx_metadata`).

        Needs PyTorch and onnx (``pip install "fkp[train]"``).
        """
        from fkp.export import onnx_bytes

        metadata = onnx_metadata(self.config, self.box_scale, self.metadata, self.weights_path)
        return onnx_bytes(self.net, self.config, metadata)

    def use_onnx(self, threads: int = 1) -> KeypointModel:
        """Run the network with onnxruntime from now on (faster on CPU); returns ``self``.

        Runs :attr:`onnx_path` when the model has one; otherwise exports :attr:`net` (needs torch).

        Raises:
            WeightsError: (one line) :attr:`onnx_path` is not an ONNX model onnxruntime can run.
        """
        if self.onnx_path is not None:
            self._onnx_session = onnx_session(self.onnx_path, threads)
        else:
            from fkp.export import onnx_bytes

            self._onnx_session = onnx_session(onnx_bytes(self.net, self.config), threads)
        return self


def default_weights_path() -> Path:
    """Where the shipped default model lies inside the installed package (its ONNX file is beside it)."""
    return Path(str(resources.files("fkp") / "weights" / DEFAULT_WEIGHTS))


def load_model(
    path: str | os.PathLike[str] | None = None,
    backend: Backend | Literal["auto"] = "auto",
    threads: int = 1,
    second_pass: SecondPass = SecondPass(),
) -> KeypointModel:
    """Load the shipped default model, or a model file written by ``fkp train`` or ``fkp export``.

    With the ``"onnx"`` or ``"auto"`` backend, a ``NAME.safetensors`` runs from ``NAME.onnx``
    beside it (checked to be made from it) and PyTorch is never imported. Where there is no such
    ONNX file (a ``best.safetensors`` from an older ``fkp train``), the network is built with
    PyTorch and exported in memory: that needs ``fkp[train]``.

    Args:
        path: ``None`` for the default model; a ``.safetensors`` file (``best.safetensors`` of
            a run), an ``.onnx`` file written by ``fkp export``, or a training checkpoint
            ``last.pt`` (loaded with ``weights_only=True``; needs torch).
        backend: ``"torch"`` (needs torch), ``"onnx"``, or ``"auto"``: onnx when onnxruntime is
            installed, else torch.
        threads: onnxruntime's CPU threads (PyTorch follows ``torch.set_num_threads``).
        second_pass: when a face gets an upright second pass (:class:`SecondPass`; ``SecondPass.off()``:
            one plain pass).

    Raises:
        WeightsError: (one line) the file is missing, is not an fkp model, or its ONNX file is
            unreadable or was made from other weights.
    """
    path = Path(path) if path is not None else default_weights_path()
    if not path.is_file():
        raise WeightsError(f"{path}: no such model file")
    use_onnx = backend == "onnx" or (backend == "auto" and _has_onnxruntime())
    if (path.suffix == ".pt" or not use_onnx) and not _has_torch():
        raise WeightsError(f"{path}: a checkpoint or the torch backend needs PyTorch: pip install 'fkp[train]'")
    if path.suffix == ".onnx":
        if not use_onnx:
            raise WeightsError(f"{path}: an ONNX model runs with onnxruntime only, not backend={backend!r}")
        model = _from_file(None, parse_metadata(path, read_onnx_metadata(path)), second_pass)
        model.onnx_path = path
        return model.use_onnx(threads=threads)
    if path.suffix == ".pt":
        model = _from_file(*_read_checkpoint(path), second_pass)
    else:
        model = _from_file(None, parse_metadata(path, read_safetensors_metadata(path)), second_pass)
        model.weights_path = path
        onnx_path = path.with_suffix(".onnx")
        if use_onnx and onnx_path.is_file():
            model.onnx_path = onnx_path
    if not use_onnx:
        model.net.eval()  # reads the weights now, so that a bad file fails here and not at first use
        return model  # a model runs with PyTorch until use_onnx
    if model.onnx_path is None and not _has_torch():
        raise WeightsError(
            f"{path}: no {path.stem}.onnx beside it, and exporting one needs PyTorch: pip install 'fkp[train]'"
        )
    model.use_onnx(threads=threads)
    if model.onnx_path is not None:
        check_onnx_pair(model._onnx_session, model.onnx_path, path, model.input_size)
    return model


def _from_file(net: nn.Module | None, facts: ModelFile, second_pass: SecondPass) -> KeypointModel:
    return KeypointModel(net, facts.config, facts.box_scale, facts.info, second_pass)


def _read_checkpoint(path: Path) -> tuple[nn.Module, ModelFile]:
    """A training checkpoint's network and facts (:func:`fkp.weights_io.load_checkpoint`), its errors in one line."""
    from fkp.weights_io import load_checkpoint

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's unpickler warns, over two lines, about pickle protocols
        try:
            return load_checkpoint(path)
        except WeightsError as error:
            lines = str(error).splitlines()
            if len(lines) == 1:
                raise
            # torch's refusals span a dozen lines: name the kind only
            raise WeightsError(
                f"{path}: not an fkp training checkpoint (torch.load with weights_only=True refused it: "
                f"{type(error.__cause__).__name__})"
            ) from error


def _has_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None
