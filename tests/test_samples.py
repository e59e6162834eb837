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
