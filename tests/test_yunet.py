"""fkp.detectors: the YuNet detector on real photos, its model file's download, and the detector table."""

from __future__ import annotations

import hashlib
import socket
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

import fkp.predict
from fkp import samples
from fkp.calibration import HAAR, YUNET
from fkp.cli import main
from fkp.detect import detect_keypoints
from fkp.detectors import Detections, FaceDetector, box_styles, detect_faces, detector_spec, make_detector
from fkp.detectors.haar import HaarFaceDetector
from fkp.detectors.yunet import (
    MODELS_DIR_ENV,
    YUNET_FILE,
    ModelFileError,
    YuNetFaceDetector,
    check_yunet,
    download_yunet,
    find_yunet,
)
from fkp.fetch import FetchError
from fkp.geometry import rotate_image


@pytest.fixture(scope="module")
def yunet(models_dir: Path) -> YuNetFaceDetector:
    return YuNetFaceDetector(models_dir / YUNET_FILE)


@pytest.fixture
def no_models(monkeypatch, tmp_path) -> Path:
    """FKP_MODELS_DIR pointing at an empty folder, and an empty user cache: YuNet's file is missing."""
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv(MODELS_DIR_ENV, str(folder))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return folder


# --- the detector on real photos ----------------------------------------------------------------


def test_yunet_finds_the_astronaut_with_score_and_style(yunet: YuNetFaceDetector) -> None:
    assert isinstance(yunet, FaceDetector) and detector_spec("yunet").box_style is YUNET
    assert box_styles() == {"yunet": YUNET, "haar": HAAR}  # what the training crops draw from
    found = yunet.detect_faces(samples.astronaut())
    assert isinstance(found, Detections) and len(found) == 1
    x, y, w, h = found.boxes[0]
    assert 150 < x + w / 2 < 260 and 80 < y + h / 2 < 160 and 70 < w < 130  # her face, not her suit
    assert 0.7 <= found.scores[0] <= 1 and abs(found.angles[0]) < 15
    np.testing.assert_array_equal(yunet.detect(samples.astronaut()), found.boxes)


def test_yunet_finds_no_face_in_coffee_and_three_in_the_group_photo(yunet: YuNetFaceDetector) -> None:
    assert yunet.detect(samples.coffee()).shape == (0, 4)
    boxes = yunet.detect(samples.group_photo())
    assert len(boxes) == 3 and (np.diff(boxes[:, 0]) > 0).all()


def test_yunet_finds_a_face_filling_a_3000_px_photo(yunet: YuNetFaceDetector) -> None:
    face = samples.astronaut()[40:200, 140:300]  # the face with a little margin
    big = cv2.resize(face, (3000, 3000), interpolation=cv2.INTER_CUBIC)
    (box,) = yunet.detect(big)
    assert box[2] > 1200 and box[3] > 1200  # in the big photo's pixels
    assert 1000 < box[0] + box[2] / 2 < 2000 and 1000 < box[1] + box[3] / 2 < 2000


def test_yunet_roll_has_the_sign_of_the_turn(yunet: YuNetFaceDetector) -> None:
    image = samples.astronaut()
    upright = yunet.detect_faces(image).angles[0]
    clockwise = yunet.detect_faces(rotate_image(image, np.zeros((1, 2)), 30)[0]).angles
    counter = yunet.detect_faces(rotate_image(image, np.zeros((1, 2)), -30)[0]).angles
    assert len(clockwise) == 1 and len(counter) == 1
    # YuNet's eye points follow only part of a roll, but in its direction
    assert clockwise[0] > upright + 2 and counter[0] < upright - 2


def test_pipeline_hands_yunet_angles_to_the_model(yunet: YuNetFaceDetector, mean_shape_model) -> None:
    model = mean_shape_model()
    faces = detect_keypoints(samples.astronaut(), detector=yunet, model=model)
    assert len(faces) == 1 and 0.7 <= faces[0].score <= 1
    assert model.angles[0] is not None and np.isfinite(model.angles[0]).all()
    detect_keypoints(samples.astronaut(), detector=HaarFaceDetector(), model=model)
    assert model.angles[1] is None  # Haar knows no roll


def test_detect_faces_wraps_a_plain_detector() -> None:
    class Fixed:
        def detect(self, image: np.ndarray) -> np.ndarray:
            return np.array([[1, 2, 30, 40]], np.float32)

    found = detect_faces(Fixed(), samples.coffee())
    assert found.boxes.shape == (1, 4) and np.isnan(found.scores).all() and np.isnan(found.angles).all()
    with pytest.raises(ValueError, match="1 boxes but 2 scores"):
        Detections(np.zeros((1, 4)), np.zeros(2), np.zeros(1))


# --- detector choice and a missing or corrupt file ----------------------------------------------


def test_auto_is_yunet_when_its_file_is_there(models_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv(MODELS_DIR_ENV, str(models_dir))
    lines: list[str] = []
    assert isinstance(make_detector("auto", notify=lines.append), YuNetFaceDetector) and lines == []
    assert isinstance(make_detector("haar"), HaarFaceDetector)
    with pytest.raises(ValueError, match="unknown detector"):
        make_detector("dlib")


def test_auto_falls_back_to_haar_with_one_line(no_models: Path) -> None:
    lines: list[str] = []
    assert isinstance(make_detector("auto", notify=lines.append, min_neighbors=3), HaarFaceDetector)
    assert len(lines) == 1 and "fkp models download" in lines[0] and YUNET_FILE in lines[0]
    with pytest.raises(ModelFileError, match="not found.*fkp models download"):
        make_detector("yunet")


def test_a_corrupt_file_is_refused(no_models: Path) -> None:
    (no_models / YUNET_FILE).write_bytes(b"not an onnx model")
    with pytest.raises(ModelFileError, match="corrupt"):
        check_yunet()
    lines: list[str] = []
    assert isinstance(make_detector("auto", notify=lines.append), HaarFaceDetector) and "corrupt" in lines[0]


def test_cli_detector_yunet_without_its_file_is_one_line_and_exit_1(
    no_models: Path, monkeypatch, tmp_path, capfd, mean_shape_model
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(fkp.predict, "load_model", lambda path=None, **_: mean_shape_model())
    assert main(["detect", "--detector", "yunet"]) == 1
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and str(no_models / YUNET_FILE) in err[0] and "fkp models download" in err[0]
    assert main(["detect", "--detector", "auto"]) == 0  # Haar, with one hint line
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("fkp detect: using the Haar face detector")


# --- the download ---------------------------------------------------------------------------------


def _served(http_dir, payload: bytes) -> tuple[str, str]:
    folder, base = http_dir
    (folder / YUNET_FILE).write_bytes(payload)
    return f"{base}/{YUNET_FILE}", hashlib.sha256(payload).hexdigest()


def test_download_places_the_checked_file(http_dir, tmp_path) -> None:
    url, digest = _served(http_dir, b"model bytes" * 100)
    dest = tmp_path / "cache" / "models"
    path = download_yunet(url, dest, progress=False, sha256=digest)
    assert path == dest / YUNET_FILE and path.read_bytes() == b"model bytes" * 100
    assert sorted(p.name for p in dest.iterdir()) == [YUNET_FILE]
    (http_dir[0] / YUNET_FILE).unlink()  # an intact copy is kept without asking the server
    assert download_yunet(url, dest, progress=False, sha256=digest) == path


def test_download_with_a_wrong_checksum_leaves_nothing(http_dir, tmp_path) -> None:
    url, _ = _served(http_dir, b"something else")
    dest = tmp_path / "models"
    with pytest.raises(ModelFileError, match="wrong sha256"):
        download_yunet(url, dest, progress=False)
    assert not dest.exists()  # nor the folder it made


def test_an_interrupted_download_leaves_nothing(tmp_path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def half_answer() -> None:  # promises 1000 bytes, sends 100, hangs up
        connection, _ = listener.accept()
        connection.recv(4096)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100)
        connection.close()

    thread = threading.Thread(target=half_answer, daemon=True)
    thread.start()
    dest = tmp_path / "models"
    with pytest.raises(FetchError):
        download_yunet(f"http://127.0.0.1:{listener.getsockname()[1]}/{YUNET_FILE}", dest, progress=False)
    thread.join(5)
    listener.close()
    assert not dest.exists()  # nor the folder it made


def test_cli_download_without_network_says_so(dead_url: str, tmp_path, capfd) -> None:
    dest = tmp_path / "models"
    assert main(["models", "download", "--dir", str(dest), "--url", dead_url]) == 1
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip() and "%" not in line]
    assert len(err) == 1 and "no network?" in err[0]
    assert not dest.exists()  # nothing left behind, not even the folder


def test_cli_download_into_the_user_cache(http_dir, monkeypatch, tmp_path, capsys) -> None:
    url, _ = _served(http_dir, (Path(__file__).parent / "conftest.py").read_bytes())
    monkeypatch.delenv(MODELS_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert find_yunet() == tmp_path / "xdg" / "fkp" / "models" / YUNET_FILE
    assert main(["models", "download", "--url", url]) == 1  # not YuNet's bytes: refused, nothing kept
    assert not find_yunet().exists()
    assert not (tmp_path / "xdg").exists()  # not even the cache folders it made


def test_cli_download_into_a_read_only_folder_names_it(http_dir, tmp_path, capfd) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    url, _ = _served(http_dir, b"bytes")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(["models", "download", "--dir", str(locked / "models"), "--url", url]) == 1
    finally:
        locked.chmod(0o700)
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and str(locked / "models") in err[0] and "Permission denied" in err[0]
    assert list(locked.iterdir()) == []


def test_turned_copies_find_a_face_rolled_by_60_and_90_deg(models_dir: Path) -> None:
    plain = YuNetFaceDetector(models_dir / YUNET_FILE, rotations="never")
    auto = YuNetFaceDetector(models_dir / YUNET_FILE)  # default: the turned copies when upright finds none
    always = YuNetFaceDetector(models_dir / YUNET_FILE, rotations="always")
    image = samples.astronaut()
    (upright,) = plain.detect_faces(image).boxes
    centre = upright[:2] + upright[2:] / 2
    for degrees in (60, -60, 90, -90):
        turned, (moved_centre,) = rotate_image(image, centre[None], degrees)
        for turning in (auto, always):
            found = turning.detect_faces(turned)
            assert len(found) == 1, (degrees, turning.rotations)
            box = found.boxes[0]
            np.testing.assert_allclose(box[:2] + box[2:] / 2, moved_centre, atol=0.15 * upright[2])
        np.testing.assert_allclose(box[2:], upright[2:], rtol=0.2)  # found on a copy: its sides along the face's axes
        assert abs(found.angles[0] - degrees) < 20  # the copy's turn plus what the eyes say


def test_cli_download_under_a_file_names_the_folder(http_dir, tmp_path, capfd) -> None:
    url, _ = _served(http_dir, b"bytes")
    (tmp_path / "notes.txt").write_text("mine")
    folder = tmp_path / "notes.txt" / "models"
    assert main(["models", "download", "--dir", str(folder), "--url", url]) == 1
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith(f"fkp models: error: {folder}: cannot write")
    assert (tmp_path / "notes.txt").read_text() == "mine"


# --- when the turned copies are searched ----------------------------------------------------------


def _count_passes(detector: YuNetFaceDetector, monkeypatch) -> list[int]:
    """Record the longest side searched by every YuNet pass ``detector`` makes."""
    passes: list[int] = []
    upright = detector._detect_upright

    def counted(image: np.ndarray, max_side: int | None = None) -> Detections:
        passes.append(min(max(image.shape[:2]), max_side or detector.max_side))
        return upright(image, max_side)

    monkeypatch.setattr(detector, "_detect_upright", counted)
    return passes


@pytest.mark.parametrize(
    ("rotations", "upright_passes", "empty_passes"), [("auto", 1, 5), ("always", 5, 5), ("never", 1, 1)]
)
def test_turned_copies_are_searched_as_rotations_says(
    models_dir: Path, monkeypatch, rotations: str, upright_passes: int, empty_passes: int
) -> None:
    detector = YuNetFaceDetector(models_dir / YUNET_FILE, rotations=rotations)  # type: ignore[arg-type]
    passes = _count_passes(detector, monkeypatch)
    assert len(detector.detect_faces(samples.astronaut())) == 1
    assert len(passes) == upright_passes  # an upright face: "auto" pays for one pass
    passes.clear()
    assert len(detector.detect_faces(samples.coffee())) == 0
    assert len(passes) == empty_passes  # no face upright: "auto" looks at the turned copies too
    assert passes[0] == 600 and all(side <= detector.turns_max_side for side in passes[1:])  # turned: smaller


def test_auto_finds_rolled_faces_that_the_upright_pass_misses(models_dir: Path) -> None:
    never = YuNetFaceDetector(models_dir / YUNET_FILE, rotations="never")
    auto = YuNetFaceDetector(models_dir / YUNET_FILE, rotations="auto")
    for degrees in (60, 90, -75, -105):
        turned, _ = rotate_image(samples.grace_hopper(), np.zeros((1, 2)), degrees)
        assert len(never.detect(turned)) == 0, degrees
        assert len(auto.detect(turned)) == 1, degrees


def test_rotations_is_checked_and_shown(models_dir: Path, monkeypatch) -> None:
    with pytest.raises(ValueError, match="always, auto, never"):
        YuNetFaceDetector(models_dir / YUNET_FILE, rotations="sometimes")  # type: ignore[arg-type]
    detector = YuNetFaceDetector(models_dir / YUNET_FILE)
    assert detector.rotations == "auto" and "rotations='auto'" in repr(detector)
    assert YuNetFaceDetector(models_dir / YUNET_FILE, max_side=256).turns_max_side == 256  # never above max_side
    monkeypatch.setenv(MODELS_DIR_ENV, str(models_dir))
    assert make_detector("yunet", rotations="always").rotations == "always"
    assert make_detector("auto", rotations="never").rotations == "never"


def test_cli_rotations_option(models_dir: Path, monkeypatch, tmp_path, mean_shape_model) -> None:
    monkeypatch.setenv(MODELS_DIR_ENV, str(models_dir))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(fkp.predict, "load_model", lambda path=None, **_: mean_shape_model())
    built: list[YuNetFaceDetector] = []
    original = YuNetFaceDetector.__init__

    def recording(self, *args, **kwargs) -> None:
        original(self, *args, **kwargs)
        built.append(self)

    monkeypatch.setattr(YuNetFaceDetector, "__init__", recording)
    assert main(["detect", "--rotations", "never", "-o", "a.png"]) == 0
    assert main(["detect", "-o", "b.png", "--max-side", "320"]) == 0
    assert [(detector.rotations, detector.max_side) for detector in built] == [("never", 640), ("auto", 320)]
    for wrong in (["--no-rotations"], ["--max-side", "31"], ["--rotations", "sometimes"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["detect", *wrong])
        assert exit_info.value.code == 2
