import numpy as np
import pytest
import torch

from fkp import geometry
from fkp.landmarks import NUM_KEYPOINTS, REGIONS
from fkp.model_file import WeightsError
from fkp.models import KeypointNetConfig, build_model
from fkp.predict import KeypointModel, load_model
from fkp.predictor import SecondPass

CONFIG = KeypointNetConfig(input_size=32, channels=(4, 4, 8, 8, 8), blocks=(1, 1, 1), decoder_channels=8)


@pytest.fixture
def tiny_model() -> KeypointModel:
    torch.manual_seed(0)
    return KeypointModel(build_model(CONFIG), CONFIG, box_scale=1.3)


def test_predict_maps_crop_points_back_into_each_box(tiny_model):
    image = np.random.default_rng(0).integers(0, 255, size=(120, 160, 3), dtype=np.uint8)
    boxes = np.array([[10, 20, 40, 40], [90, 30, 50, 60]], dtype=np.float32)
    points = tiny_model.predict(image, boxes)
    assert points.shape == (2, NUM_KEYPOINTS, 2) and points.dtype == np.float32
    for box, face in zip(boxes, points):  # normalised outputs lie in [-1, 1]: inside the crop square
        centre, side = geometry.square_box(box, tiny_model.box_scale)
        assert np.all(np.abs(face - centre) <= side / 2 + 1)
    assert tiny_model.predict(image, np.zeros((0, 4))).shape == (0, NUM_KEYPOINTS, 2)


def test_crops_cut_from_the_colour_photo_match_crops_of_its_grayscale_copy(tiny_model):
    """Prediction turns only the crops grayscale, not the whole photo: the same pixels within rounding."""
    import cv2

    noise = np.random.default_rng(5).integers(0, 255, size=(120, 160, 3), dtype=np.uint8)
    image = cv2.GaussianBlur(noise, (0, 0), 2)
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    boxes, angles = np.array([[10, 20, 40, 40], [60, 30, 70, 60]], dtype=np.float32), np.array([0.0, 30.0])
    from_colour, affines = tiny_model.crops(image, boxes, angles)
    from_gray, same = tiny_model.crops(gray, boxes, angles)
    np.testing.assert_array_equal(affines, same)
    assert from_colour.shape == (2, 32, 32) and np.abs(from_colour.astype(int) - from_gray).max() <= 1
    np.testing.assert_allclose(tiny_model.predict(image, boxes), tiny_model.predict(gray, boxes), atol=0.1)


def test_save_and_load_round_trip(tiny_model, tmp_path):
    path = tmp_path / "model.safetensors"
    tiny_model.save(path, extra={"note": "test"})
    loaded = load_model(path)
    assert loaded.config == CONFIG and loaded.box_scale == 1.3 and loaded.metadata["note"] == "test"
    image = np.random.default_rng(1).integers(0, 255, size=(64, 64, 3), dtype=np.uint8)
    box = np.array([[8, 8, 40, 40]])
    np.testing.assert_allclose(loaded.predict(image, box), tiny_model.predict(image, box), atol=1e-4)  # onnx vs torch


def test_onnx_backend_matches_torch(tiny_model):
    pytest.importorskip("onnxruntime")
    image = np.random.default_rng(2).integers(0, 255, size=(80, 80, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 50, 50], [0, 0, 30, 30], [40, 40, 40, 40]])
    expected = tiny_model.predict(image, boxes)
    assert tiny_model.use_onnx().backend == "onnx"
    np.testing.assert_allclose(tiny_model.predict(image, boxes), expected, atol=1e-3)


def test_wrong_weights_files_raise_clear_errors(tmp_path, tiny_model):
    with pytest.raises(WeightsError, match="no such model file"):
        load_model(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"this is not a weights file")
    with pytest.raises(WeightsError, match="not a safetensors weights file"):
        load_model(junk)
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(WeightsError, match="not an fkp model"):
        load_model(foreign)
    bad_pickle = tmp_path / "last.pt"
    bad_pickle.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not an fkp training checkpoint"):
        load_model(bad_pickle)


def test_half_precision_weights_load_as_float32_and_predict_alike(tiny_model, tmp_path):
    path = tmp_path / "half.safetensors"
    tiny_model.save(path, half=True)
    loaded = load_model(path)
    assert all(p.dtype == torch.float32 for p in loaded.net.parameters())
    image = np.random.default_rng(3).integers(0, 255, size=(64, 64, 3), dtype=np.uint8)
    box = np.array([[8, 8, 40, 40]])
    np.testing.assert_allclose(loaded.predict(image, box), tiny_model.predict(image, box), atol=0.05)


class UprightOracle(KeypointModel):
    """A model whose network always sees an upright face filling its crop; counts its passes."""

    def __init__(self) -> None:
        super().__init__(build_model(CONFIG), CONFIG, box_scale=1.3)
        self.passes = 0
        face = np.zeros((NUM_KEYPOINTS, 2), np.float32)
        face[:, 0] = np.linspace(-0.5, 0.5, NUM_KEYPOINTS)
        face[:, 1] = np.linspace(-0.3, 0.6, NUM_KEYPOINTS)
        face[REGIONS["right_eye"]] = (-0.3, -0.2)
        face[REGIONS["left_eye"]] = (0.3, -0.2)
        self.face = face

    def predict_crops(self, crops: np.ndarray, head: int = 0) -> np.ndarray:
        self.passes += 1
        return np.repeat(self.face[None], len(crops), axis=0)


def test_a_known_angle_turns_the_first_crop_and_an_upright_face_needs_one_pass():
    image = np.zeros((100, 100, 3), np.uint8)
    box = np.array([[30, 30, 40, 40]])
    model = UprightOracle()
    assert geometry.keypoints_roll(model.predict(image, box))[0] == pytest.approx(0.0, abs=1e-3)
    assert model.passes == 1
    turned = model.predict(image, box, angles=np.array([35.0]))
    assert geometry.keypoints_roll(turned)[0] == pytest.approx(35.0, abs=1e-3) and model.passes == 2
    model.second_pass = SecondPass(extra_passes=1)  # an extra pass for every face, whatever its roll
    model.predict(image, box)
    assert model.passes == 4
    model.second_pass = SecondPass.off()  # one plain pass, whatever the roll
    model.predict(image, box, angles=np.array([35.0]))
    assert model.passes == 5
    with pytest.raises(ValueError, match="angles"):
        model.predict(image, box, angles=np.array([1.0, 2.0]))


class TiltedThenUpright(UprightOracle):
    """Its first pass sees the face rolled by ``tilt`` degrees; its upright pass sees it upright,
    a little to the right of where the first put it, so the two answers differ."""

    def __init__(self, tilt: float) -> None:
        super().__init__()
        theta = np.radians(tilt)
        turn = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]], np.float32)
        self.tilted = self.face @ turn.T  # y points down: a positive tilt turns the face clockwise

    def predict(self, *args, **kwargs):
        self.passes = 0
        return super().predict(*args, **kwargs)

    def predict_crops(self, crops: np.ndarray, head: int = 0) -> np.ndarray:
        self.passes += 1
        face = self.tilted if self.passes == 1 else self.face + np.float32(0.1)
        return np.repeat(face[None], len(crops), axis=0)


@pytest.mark.parametrize("tilt, averaged", [(15.0, True), (-24.0, True), (40.0, False), (-120.0, False)])
def test_the_upright_pass_is_averaged_with_a_first_pass_at_a_familiar_tilt_and_replaces_it_beyond(tilt, averaged):
    image = np.zeros((120, 120, 3), np.uint8)
    box = np.array([[40, 40, 40, 40]])
    model = TiltedThenUpright(tilt)
    answer = model.predict(image, box)
    assert model.passes == 2
    assert geometry.keypoints_roll(answer)[0] == pytest.approx(tilt, abs=0.5)
    model.second_pass = SecondPass.off()  # the first pass alone
    first = model.predict(image, box)
    assert model.passes == 1
    model.second_pass = SecondPass(average_tilt=-np.inf)  # the upright pass alone
    upright = model.predict(image, box)
    assert np.abs(first - upright).max() > 2.0  # pixels: the two passes disagree
    np.testing.assert_allclose(answer, (first + upright) / 2 if averaged else upright, atol=1e-3)


def test_save_writes_the_onnx_model_beside_the_weights_and_loading_runs_it(tiny_model, tmp_path):
    path = tmp_path / "best.safetensors"
    tiny_model.save(path, half=True)
    onnx_path = tmp_path / "best.onnx"
    assert onnx_path.is_file()
    loaded = load_model(path)
    assert loaded.backend == "onnx" and loaded.onnx_path == onnx_path and loaded.weights_path == path
    image = np.random.default_rng(4).integers(0, 255, size=(96, 96, 3), dtype=np.uint8)
    boxes = np.array([[8, 8, 60, 60], [30, 20, 50, 50]])
    torch_points = load_model(path, backend="torch").predict(image, boxes)
    np.testing.assert_allclose(loaded.predict(image, boxes), torch_points, atol=1e-3)
    alone = load_model(onnx_path)  # an .onnx file carries the config in its metadata
    assert alone.config == CONFIG and alone.box_scale == 1.3
    np.testing.assert_allclose(alone.predict(image, boxes), torch_points, atol=1e-3)


def test_an_onnx_file_made_from_other_weights_is_refused(tiny_model, tmp_path):
    tiny_model.save(tmp_path / "a.safetensors")
    torch.manual_seed(1)
    KeypointModel(build_model(CONFIG), CONFIG, box_scale=1.3).save(tmp_path / "b.safetensors")
    (tmp_path / "a.onnx").write_bytes((tmp_path / "b.onnx").read_bytes())
    with pytest.raises(WeightsError, match=r"a\.onnx: not made from a\.safetensors") as error:
        load_model(tmp_path / "a.safetensors")
    assert "\n" not in str(error.value)
    assert load_model(tmp_path / "a.safetensors", backend="torch").backend == "torch"  # the weights alone still load


def _with_metadata(tmp_path, tiny_model, **changes: str):
    """Save ``tiny_model`` with some of its metadata replaced (no ONNX beside it)."""
    from safetensors.torch import save_file

    from fkp.model_file import file_metadata

    metadata = {**file_metadata(tiny_model.config, tiny_model.box_scale), **changes}
    path = tmp_path / "edited.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_model.net.state_dict().items()}, str(path), metadata=metadata)
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": "other"}, "not an fkp model"),
        ({"format_version": "2"}, "format version 2, but this fkp reads version 1"),
        ({"model_config": "{not json"}, "bad fkp metadata"),
        ({"model_config": '{"architecture": "resnet"}'}, "unknown architecture 'resnet'"),
        (
            {"model_config": '{"architecture": "keypointnet", "depth": 3}'},
            r"unknown keypointnet config keys \['depth'\]",
        ),
        ({"model_config": '{"architecture": "keypointnet", "input_size": 100000}'}, "input_size must be an integer"),
        ({"model_config": '{"architecture": "keypointnet", "channels": [4, 4, 8, 8, -1]}'}, "sizes must be integers"),
        ({"box_scale": "nan"}, "box_scale nan is outside"),
        ({"box_scale": "wide"}, "bad fkp metadata"),
        ({"info": "[1, 2]"}, "info is not a JSON object"),
        (
            {"model_config": '{"architecture": "keypointnet", "input_size": 32}'},
            "weights do not fit a keypointnet model",
        ),
    ],
)
def test_bad_weights_metadata_is_one_line(tiny_model, tmp_path, changes, message):
    path = _with_metadata(tmp_path, tiny_model, **changes)
    with pytest.raises(WeightsError, match=message) as error:
        load_model(path, backend="torch")
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_weights_without_their_onnx_file_need_torch_to_export_one(tiny_model, tmp_path, monkeypatch):
    path = tmp_path / "old.safetensors"
    tiny_model.save(path, onnx=False)  # as an older fkp train wrote them
    assert not path.with_suffix(".onnx").exists()
    assert load_model(path).backend == "onnx"  # exported in memory with torch
    import fkp.predict

    monkeypatch.setattr(fkp.predict, "_has_torch", lambda: False)  # a core install
    with pytest.raises(WeightsError, match=r"no old\.onnx beside it, and exporting one needs PyTorch"):
        load_model(path)
    with pytest.raises(WeightsError, match="needs PyTorch"):
        load_model(path, backend="torch")


def test_the_second_pass_rule_is_a_value_that_load_model_takes(tiny_model, tmp_path):
    assert SecondPass() == SecondPass(roll_threshold=10.0, average_tilt=25.0, extra_passes=0)
    with pytest.raises(ValueError, match="extra_passes"):
        SecondPass(extra_passes=-1)
    with pytest.raises(ValueError, match="numbers"):
        SecondPass(roll_threshold=float("nan"))
    path = tmp_path / "m.safetensors"
    tiny_model.save(path)
    assert load_model(path).second_pass == SecondPass()
    assert load_model(path, second_pass=SecondPass.off()).second_pass.roll_threshold == np.inf


def test_a_corrupt_onnx_file_beside_the_weights_is_one_line(tiny_model, tmp_path):
    path = tmp_path / "x.safetensors"
    tiny_model.save(path)
    path.with_suffix(".onnx").write_bytes(b"\x08\x07 definitely not a protobuf graph" * 10)
    with pytest.raises(WeightsError, match=r"x\.onnx: not an ONNX model") as error:
        load_model(path)
    assert "\n" not in str(error.value)
    assert load_model(path, backend="torch").backend == "torch"  # the weights alone still load


def test_a_checkpoint_torch_refuses_to_unpickle_is_one_line_without_warnings(tmp_path, recwarn):
    pickled = tmp_path / "last.pt"
    torch.save({"model": {}, "array": np.zeros(3)}, pickled)  # a NumPy array: not weights_only material
    with pytest.raises(WeightsError, match="not an fkp training checkpoint") as error:
        load_model(pickled)
    assert "\n" not in str(error.value) and str(pickled) in str(error.value)
    protocol4 = tmp_path / "p4.pt"
    import pickle

    protocol4.write_bytes(pickle.dumps({"a": 1}, protocol=4))  # torch's unpickler warns about the protocol
    with pytest.raises(WeightsError, match="not an fkp training checkpoint") as error:
        load_model(protocol4)
    assert "\n" not in str(error.value)
    assert not [w for w in recwarn if "pickle" in str(w.message)]


def test_fkp_detect_with_a_corrupt_onnx_beside_the_model_says_one_line(tiny_model, tmp_path, capfd, monkeypatch):
    import cv2

    from fkp import samples
    from fkp.cli import main

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "x.safetensors"
    tiny_model.save(path)
    path.with_suffix(".onnx").write_bytes(b"not a protobuf at all")
    assert cv2.imwrite(str(tmp_path / "a.png"), samples.astronaut()[..., ::-1])
    assert main(["detect", "a.png", "--model", str(path), "--no-draw", "--detector", "haar"]) != 0
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "x.onnx: not an ONNX model" in err[0]
