"""fkp.detectors' table: a detector registered in one place reaches make_detector, the CLI and the
evaluation; the detector options and box sources that once crashed are one-line usage errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

import fkp.predict
from fkp import samples
from fkp.cli import main
from fkp.detectors import (
    DetectorUnavailableError,
    box_styles,
    detector_choices,
    detector_names,
    make_detector,
    register_detector,
    registry,
)
from fkp.detectors.haar import HaarFaceDetector
from fkp.evaluate import box_sources

TOY_BOX = (150.0, 60.0, 140.0, 150.0)


class ToyDetector:
    """Finds one face at a fixed box on any photo wider than ``min_width``, and nothing on smaller ones."""

    def __init__(self, min_width: int = 100) -> None:
        self.min_width = min_width

    def detect(self, image: np.ndarray) -> np.ndarray:
        if image.shape[1] < self.min_width:
            return np.zeros((0, 4), np.float32)
        return np.array([TOY_BOX], np.float32)


class Unavailable:
    def __init__(self) -> None:
        raise DetectorUnavailableError("the toy file is missing; get it with: nothing")


@pytest.fixture
def table(monkeypatch):
    """A copy of the table for this test, so that what it registers is gone afterwards."""
    monkeypatch.setattr(registry, "DETECTORS", dict(registry.DETECTORS))
    return registry.DETECTORS


def test_the_shipped_table() -> None:
    assert detector_names() == ("yunet", "haar") and detector_choices() == ("auto", "yunet", "haar")
    assert box_sources() == ("gt", "yunet", "haar")
    assert sorted(box_styles()) == ["haar", "yunet"]
    assert isinstance(make_detector("haar", min_neighbors=3, rotations=False), HaarFaceDetector)
    with pytest.raises(ValueError, match="no detector takes the option"):
        make_detector("haar", min_neigbors=3)
    with pytest.raises(ValueError, match="unknown detector 'dlib'; use one of auto, yunet, haar"):
        make_detector("dlib")


def test_one_registration_reaches_make_detector_the_styles_and_the_cli_choices(table) -> None:
    register_detector("toy", ToyDetector, label="Toy", summary="a fixed box", options=("min_width",))
    assert detector_names()[-1] == "toy" and box_sources()[-1] == "toy"
    assert "toy" not in box_styles()  # no box style: training does not draw its boxes
    toy = make_detector("toy", min_width=7, scale_factor=1.2)  # options for other detectors are ignored
    assert isinstance(toy, ToyDetector) and toy.min_width == 7
    with pytest.raises(ValueError, match="taken"):
        register_detector("toy", ToyDetector)
    with pytest.raises(ValueError, match="taken"):
        register_detector("auto", ToyDetector)


def test_auto_falls_through_the_unavailable_ones_in_table_order(table) -> None:
    table.clear()
    register_detector("missing", Unavailable, label="Missing", auto=True)
    register_detector("toy", ToyDetector, label="Toy", auto=True)
    lines: list[str] = []
    assert isinstance(make_detector("auto", notify=lines.append), ToyDetector)
    assert lines == ["using the Toy face detector: the toy file is missing; get it with: nothing"]
    with pytest.raises(DetectorUnavailableError, match="toy file is missing"):
        make_detector("missing")


def test_fkp_detect_runs_a_registered_toy_detector_end_to_end(table, tmp_path, monkeypatch, mean_shape_model) -> None:
    register_detector("toy", ToyDetector, label="Toy", summary="a fixed box")
    monkeypatch.setattr(fkp.predict, "load_model", lambda path=None, **_: mean_shape_model())
    monkeypatch.chdir(tmp_path)
    assert cv2.imwrite(
        "coffee.jpg", cv2.cvtColor(samples.coffee(), cv2.COLOR_RGB2BGR)
    )  # no face: only the toy sees one
    assert main(["detect", "coffee.jpg", "--detector", "toy", "--json", "faces.json", "-o", "out.png"]) == 0
    (face,) = json.loads((tmp_path / "faces.json").read_text())["images"][0]["faces"]
    assert face["box"] == list(TOY_BOX) and face["score"] is None
    assert (tmp_path / "out.png").is_file()


def test_fkp_evaluate_where_the_detector_finds_no_face_reports_none_found(
    table, tiny_data_dir, tmp_path, monkeypatch, capsys
) -> None:
    register_detector("toy", ToyDetector, label="Toy")  # the tiny set's photos are 48 px wide: nothing found
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--data", str(tiny_data_dir), "--boxes", "toy", "--json", "report.json"]) == 0
    out = capsys.readouterr().out
    assert "toy boxes: 0/4 faces (0.0%)" in out and "0 faces: no figures" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["found"] == 0 and report["count"] == 0 and report["mean_nme"] is None


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["detect", "--detector", "haar", "--scale-factor", "1.0000001"], "--scale-factor"),
        (["detect", "--scale-factor", "nan"], "--scale-factor"),
        (["evaluate", "--rotation", "nan"], "--rotation"),
        (["evaluate", "--rotation", "inf"], "--rotation"),
        (["evaluate", "--boxes", "dlib"], "--boxes"),
    ],
)
def test_out_of_range_detector_and_box_options_are_usage_errors(argv, names, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert names in err[-1] and "Traceback" not in err[-1]
    assert list(tmp_path.iterdir()) == []
