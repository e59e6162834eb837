"""Regression guards for the model that ships inside the package (not a benchmark)."""

import json

import numpy as np
import pytest

import fkp
from fkp import conventions, metrics
from fkp.cli import main
from fkp.data import FacialKeypointsDataset
from fkp.geometry import keypoints_box
from fkp.landmarks import NUM_KEYPOINTS
from fkp.predict import default_weights_path
from fkp.quantize import QUANTIZED_KEY


def test_the_default_model_ships_small_and_loads_without_pickle():
    path = default_weights_path()
    assert path.is_file() and path.stat().st_size <= 5_000_000
    assert path.read_bytes()[8:9] == b"{"  # safetensors: an 8-byte header length, then JSON
    model = fkp.load_model()
    assert model.metadata["train_command"].startswith("fkp train")


def test_the_default_model_predicts_test_faces_within_6_percent(data_dir):
    test = FacialKeypointsDataset(data_dir, "test")
    model = fkp.load_model()
    errors = []
    for index in range(0, len(test), 77):  # ten faces spread over the split
        truth = test.keypoints[index]
        predicted = model.predict(test.image(index), keypoints_box(truth)[None])
        assert predicted.shape == (1, NUM_KEYPOINTS, 2)
        errors.append(metrics.nme(predicted, truth[None])[0])
    assert np.mean(errors) < 0.06 and max(errors) < 0.12


def test_the_shipped_onnx_model_is_made_from_the_shipped_weights_and_agrees_with_them(data_dir):
    onnx_path = default_weights_path().with_suffix(".onnx")
    model = fkp.load_model()
    assert model.backend == "onnx" and model.onnx_path == onnx_path  # checked against the weights' sha256
    metadata = model._onnx_session.get_modelmeta().custom_metadata_map
    assert metadata.get(QUANTIZED_KEY) == "int8"  # the shipped twin is the int8 graph (fkp.quantize)
    reference = fkp.load_model(backend="torch")  # the float PyTorch network built from default.safetensors
    test = FacialKeypointsDataset(data_dir, "test")
    crop_gaps, image_gaps = [], []
    for index in range(0, len(test), 97):  # eight real test faces, with detector-like loose boxes too
        truth = test.keypoints[index]
        tight = keypoints_box(truth)
        boxes = np.stack([tight, tight + np.array([-0.1, -0.25, 0.2, 0.2]) * tight[2]])
        crops, _ = model.crops(test.image(index), boxes)
        half = model.input_size / 2  # normalised -> crop pixels
        crop_gaps.append(np.abs(model.predict_crops(crops) - reference.predict_crops(crops)) * half)
        image_gaps.append(np.abs(model.predict(test.image(index), boxes) - reference.predict(test.image(index), boxes)))
    # int8 rounding moves points by under a tenth of a crop pixel on average (measured 0.06, at most 0.58).
    crop_gap, image_gap = np.concatenate(crop_gaps), np.concatenate(image_gaps)
    assert crop_gap.mean() < 0.2 and crop_gap.max() < 2.0
    assert image_gap.mean() < 0.25 and image_gap.max() < 3.0


def test_fkp_evaluate_writes_a_json_report(data_dir, tmp_path, capsys):
    report = tmp_path / "report.json"
    assert main(["evaluate", "--data-dir", str(data_dir), "--backend", "torch", "--json", str(report)]) == 0
    figures = json.loads(report.read_text())
    assert figures["total"] == figures["found"] == 770
    assert 0 < figures["mean_nme"] < 0.06 and set(figures["region_nme"]) >= {"jaw", "mouth"}
    out = capsys.readouterr().out
    assert "mean NME" in out and "ms per face" in out


def test_fkp_export_writes_an_onnx_model_that_agrees_with_torch(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    target = tmp_path / "model.onnx"
    assert main(["export", "--onnx", str(target)]) == 0
    model = fkp.load_model(backend="torch")
    crops = np.random.default_rng(0).integers(0, 255, size=(3, model.input_size, model.input_size), dtype=np.uint8)
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    from fkp.geometry import standardize

    assert model.conventions == ("300w", "udacity")  # a head each: the exported graph takes its index
    assert [value.name for value in session.get_inputs()] == ["crops", "head"]
    for head in range(len(model.conventions)):
        feeds = {"crops": standardize(crops)[:, None], "head": np.array(head, dtype=np.int64)}
        onnx_points = session.run(None, feeds)[0]
        np.testing.assert_allclose(onnx_points, model.predict_crops(crops, head), atol=1e-3)


def test_a_wrong_model_file_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_text("not weights")
    assert main(["export", "--model", str(bad), "--onnx", str(tmp_path / "x.onnx")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.safetensors" in err[0]


@pytest.mark.parametrize("degrees", [0, 45, 90, 180])
def test_the_default_model_holds_rolled_faces(w300_dir, degrees):
    from fkp.geometry import rotate_image

    test = FacialKeypointsDataset(w300_dir, "test")
    model = fkp.load_model()
    errors = []
    for index in range(0, len(test), 50):  # twelve real photos, turned
        image, truth = rotate_image(test.image(index), test.keypoints[index], degrees)
        errors.append(metrics.nme(model.predict(image, keypoints_box(truth)[None]), truth[None])[0])
    assert np.mean(errors) < 0.06


def test_fkp_evaluate_on_300w_turned_reports_each_subset(w300_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FKP_300W_DIR", str(w300_dir))
    report = tmp_path / "report.json"
    assert main(["evaluate", "--data", "300w", "--rotation", "30", "--json", str(report)]) == 0
    figures = json.loads(report.read_text())
    assert figures["rotation"] == 30 and figures["total"] == 554
    assert set(figures["subsets"]) == {"lfpw", "helen"}
    assert sum(s["count"] for s in figures["subsets"].values()) == figures["found"]
    assert figures["mean_nme"] < 0.05  # the roll does not matter
    assert "helen:" in capsys.readouterr().out


def test_the_udacity_head_fits_the_udacity_labels_better_than_the_default_mapped_to_them(data_dir):
    model = fkp.load_model()
    test_set = FacialKeypointsDataset(data_dir, "test")
    faces = list(range(0, len(test_set), 5))
    answers = {
        labels: np.stack(
            [model.predict(test_set.image(i), keypoints_box(test_set.keypoints[i])[None], labels=labels)[0] for i in faces]
        )
        for labels in ("udacity", None)
    }
    mapped = conventions.convert(answers[None], "300w", "udacity")  # what a single-head model has to do
    truth = test_set.keypoints[faces]
    own_error, mapped_error = metrics.nme(answers["udacity"], truth).mean(), metrics.nme(mapped, truth).mean()
    assert own_error < 0.04 and own_error < mapped_error - 0.002, (own_error, mapped_error)  # measured 3.84%, 4.59%
