import numpy as np
import pytest
import torch

from fkp import geometry
from fkp.landmarks import NUM_KEYPOINTS, REGIONS
from fkp.models import KeypointNetConfig, build_model
from fkp.predict import KeypointModel, WeightsError, load_model

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

    def predict_crops(self, crops: np.ndarray) -> np.ndarray:
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
    model.refine = 1  # an extra pass for every face, whatever its roll
    model.predict(image, box)
    assert model.passes == 4
    with pytest.raises(ValueError, match="angles"):
        model.predict(image, box, angles=np.array([1.0, 2.0]))
