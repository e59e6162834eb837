import numpy as np
import pytest

from fkp import samples


def test_the_shipped_astronaut_has_the_pixels_of_scikit_image_s():
    data = pytest.importorskip("skimage.data")
    image = samples.astronaut()
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, data.astronaut())
