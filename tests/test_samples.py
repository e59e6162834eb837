import numpy as np
import pytest

from fkp import samples


def test_the_astronaut_is_scikit_image_s():
    data = pytest.importorskip("skimage.data")
    image = samples.astronaut()
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8 and image.flags.c_contiguous
    np.testing.assert_array_equal(image, data.astronaut())


def test_without_scikit_image_a_sample_is_one_clear_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "skimage", None)  # as on a core install
    with pytest.raises(samples.SampleUnavailableError, match="pip install scikit-image"):
        samples.astronaut()


def test_fkp_detect_without_scikit_image_says_so_in_one_line(monkeypatch, tmp_path, capsys):
    import sys

    from fkp.cli import main

    monkeypatch.setitem(sys.modules, "skimage", None)
    monkeypatch.setenv("FKP_MODELS_DIR", str(tmp_path))  # no YuNet file: the Haar hint must not come first
    monkeypatch.chdir(tmp_path)
    assert main(["detect"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "pip install scikit-image" in lines[0]
    assert not (tmp_path / "fkp_demo.png").exists()
