"""Shared fixtures: a tiny fake data set archive, a local HTTP server to download it from, and a stub
keypoint model (the schematic face stretched over each box) for tests that need no trained model."""

from __future__ import annotations

import functools
import hashlib
import io
import socket
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from fkp.landmarks import NUM_KEYPOINTS, mean_shape_diagram


@dataclass(frozen=True)
class FakeArchive:
    """A fake data set zip served over HTTP, with the values to check it against."""

    url: str
    size: int  # bytes of the zip
    checksums: dict[str, str]  # CSV file name -> sha256
    counts: dict[str, int]  # split -> labelled images


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served on 127.0.0.1: yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def dead_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/train-test-data.zip"


def _png(seed: int) -> bytes:
    """A tiny RGBA PNG, like upstream's images (named *.jpg)."""
    rgba = np.random.default_rng(seed).integers(0, 256, (12, 10, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    return cv2.imencode(".png", rgba)[1].tobytes()


def _csv(names: list[str]) -> bytes:
    header = ",".join(["", *map(str, range(2 * NUM_KEYPOINTS))])
    rows = [",".join([name, *(f"{v:.1f}" for v in np.linspace(1, 9, 2 * NUM_KEYPOINTS))]) for name in names]
    return ("\n".join([header, *rows]) + "\n").encode()


@pytest.fixture
def make_archive(http_dir: tuple[Path, str]) -> Callable[..., FakeArchive]:
    """Build and serve a fake archive: 3 training and 2 test images, plus 1 unlabelled test image.

    Keyword args: ``prefix`` (folder inside the zip, e.g. ``"repo-master/data/"``), ``bad_image``
    (``"split/name"`` whose bytes are replaced by garbage), ``name`` (the file name served).
    """
    folder, base = http_dir

    def build(prefix: str = "", bad_image: str | None = None, name: str = "data.zip") -> FakeArchive:
        names = {
            "training": ["Ann_Lee_00.jpg", "Ann_Lee_01.jpg", "Bo_Chen_10.jpg"],
            "test": ["Cy_Do_00.jpg", "Di_Ek_3.jpg"],
        }
        files = {f"{split}_frames_keypoints.csv": _csv(split_names) for split, split_names in names.items()}
        for seed, (split, image) in enumerate((s, n) for s, ns in names.items() for n in ns):
            files[f"{split}/{image}"] = _png(seed)
        files["test/Unlabelled_9.jpg"] = _png(99)
        if bad_image is not None:
            files[bad_image] = b"not an image"
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zipped:
            if prefix:
                zipped.writestr(prefix.split("/")[0] + "/README.md", b"not data")
                zipped.writestr("__MACOSX/" + prefix + "._training_frames_keypoints.csv", b"junk")
            for path, payload in files.items():
                zipped.writestr(prefix + path, payload)
        (folder / name).write_bytes(buffer.getvalue())
        checksums = {n: hashlib.sha256(p).hexdigest() for n, p in files.items() if n.endswith(".csv")}
        counts = {split: len(split_names) for split, split_names in names.items()}
        return FakeArchive(f"{base}/{name}", len(buffer.getvalue()), checksums, counts)

    return build


def _shared_folder(variable: str, needs: str, marker: str) -> Path:
    """The folder that environment variable ``variable`` names, holding the file ``marker``. CI always
    sets it, so there a missing one fails; elsewhere the test is skipped with the line ``needs``."""
    import os

    from fkp.utils import ci_mode

    value = os.environ.get(variable)
    if not value:
        if ci_mode():
            pytest.fail(f"{variable} is not set in CI")
        pytest.skip(needs)
    path = Path(value)
    assert (path / marker).is_file(), f"{variable}={value} does not hold {marker}"
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data set (``$FKP_DATA_DIR``)."""
    from fkp.utils import DATA_DIR_ENV, GET_DATA_HINT

    return _shared_folder(DATA_DIR_ENV, f"needs the data set: {GET_DATA_HINT}", "training_frames_keypoints.csv")


@pytest.fixture(scope="session")
def w300_dir() -> Path:
    """The 300-W crops (``$FKP_300W_DIR``)."""
    from fkp.utils import GET_300W_HINT, W300_DIR_ENV

    return _shared_folder(W300_DIR_ENV, f"needs 300-W: {GET_300W_HINT}", "test_frames_keypoints.csv")


@pytest.fixture
def tiny_data_dir(tmp_path: Path) -> Path:
    """A tiny labelled data set on disk (the real layout): 30 training images of 10 people, 4 test
    images; each a 48x48 noise picture with a face-sized cloud of 68 points in its middle."""
    root = tmp_path / "tiny-data"
    rng = np.random.default_rng(0)
    people = {"training": [f"Person_{i}" for i in range(10)], "test": ["Test_Person"]}
    for split, persons in people.items():
        (root / split).mkdir(parents=True)
        names = [f"{person}_{k}.jpg" for person in persons for k in range(3 if split == "training" else 4)]
        rows = []
        for name in names:
            gray = rng.integers(0, 256, (48, 48), dtype=np.uint8)
            assert cv2.imwrite(str(root / split / name.replace(".jpg", ".png")), gray)
            (root / split / name.replace(".jpg", ".png")).rename(root / split / name)
            points = rng.uniform(14, 34, (NUM_KEYPOINTS, 2))
            rows.append(",".join([name, *(f"{v:.2f}" for v in points.ravel())]))
        header = ",".join(["", *map(str, range(2 * NUM_KEYPOINTS))])
        (root / f"{split}_frames_keypoints.csv").write_text("\n".join([header, *rows]) + "\n")
    return root


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The folder that holds YuNet's file (``$FKP_MODELS_DIR``)."""
    from fkp.detectors.yunet import GET_YUNET_HINT, MODELS_DIR_ENV, YUNET_FILE

    return _shared_folder(MODELS_DIR_ENV, f"needs the YuNet face detector: {GET_YUNET_HINT}", YUNET_FILE)


class MeanShapeModel:
    """Stub keypoint model: the schematic mean face stretched over each box, plus seeded noise if
    asked (a jittery model); counts its calls and records the angles it is given."""

    def __init__(self, noise: float = 0.0) -> None:
        self.noise = noise
        self.rng = np.random.default_rng(0)
        self.calls = 0
        self.angles: list[np.ndarray | None] = []

    def predict(
        self, image: np.ndarray, boxes: np.ndarray, angles: np.ndarray | None = None, labels: str | None = None
    ) -> np.ndarray:
        self.calls += 1
        self.angles.append(angles)
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        points = boxes[:, None, :2] + mean_shape_diagram()[None] * boxes[:, None, 2:]  # (N, 68, 2)
        return points + self.rng.normal(0.0, self.noise, size=points.shape) if self.noise else points


@pytest.fixture
def mean_shape_model() -> type[MeanShapeModel]:
    """The stub model's class: a test makes as many as it needs, ``mean_shape_model(noise=2.0)``."""
    return MeanShapeModel


def read_video(path: str | Path) -> list[np.ndarray]:
    """Every frame of a video file, as OpenCV decodes it ((H, W, 3) uint8 BGR)."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


@pytest.fixture
def video_frames() -> Callable[[str | Path], list[np.ndarray]]:
    """:func:`read_video`, for the tests that check a written video."""
    return read_video
