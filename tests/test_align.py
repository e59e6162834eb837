"""fkp.align and ``fkp align``: transforms against hand-computed values, the FFHQ recipe's square,
invariance to turning and scaling a real face, faces at the photo's edge, and the command in-process."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

import fkp
import fkp.cli.align
import fkp.detect
import fkp.predict
from fkp import samples
from fkp.align import (
    ARCFACE_TEMPLATE,
    MOUTH_LEFT_CORNER,
    MOUTH_RIGHT_CORNER,
    Template,
    TemplateError,
    align_face,
    arcface_points,
    arcface_template,
    ffhq_quad,
    load_template,
    quad_transform,
    similarity_transform,
)
from fkp.cli import main
from fkp.geometry import apply_affine, invert_affine, keypoints_box, rotate_image
from fkp.landmarks import NOSE_TIP, NUM_KEYPOINTS, REGIONS


def _similarity(degrees: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    theta = math.radians(degrees)
    linear = scale * np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    return np.hstack([linear, np.array(shift)[:, None]])


KNOWN = _similarity(37.0, 1.7, (12.5, -3.25))
"""A rotation by 37 degrees, a scale of 1.7 and a shift: what the fits must give back."""


def _face(right_eye, left_eye, nose, mouth_right, mouth_left) -> np.ndarray:
    """(68, 2) points with the given eye centres (each eye's six points around it), nose tip and
    mouth corners; the other points lie between them (they play no part in the alignment)."""
    points = np.tile(np.mean([right_eye, left_eye, mouth_right], axis=0), (NUM_KEYPOINTS, 1))
    ring = np.array([[-3.0, 0.0], [-1.0, -1.5], [1.0, -1.5], [3.0, 0.0], [1.0, 1.5], [-1.0, 1.5]])  # mean 0
    points[REGIONS["right_eye"]] = np.asarray(right_eye) + ring
    points[REGIONS["left_eye"]] = np.asarray(left_eye) + ring
    points[NOSE_TIP] = nose
    points[MOUTH_RIGHT_CORNER], points[MOUTH_LEFT_CORNER] = mouth_right, mouth_left
    return points


# --- transforms against hand-computed values ------------------------------------------------------


def test_similarity_gives_back_a_known_transform() -> None:
    source = np.random.default_rng(0).uniform(-50, 150, (7, 2))
    np.testing.assert_allclose(similarity_transform(source, apply_affine(source, KNOWN)), KNOWN, atol=1e-6)
    two = source[:2]  # two points fix a similarity exactly
    np.testing.assert_allclose(similarity_transform(two, apply_affine(two, KNOWN)), KNOWN, atol=1e-6)


def test_similarity_is_least_squares_and_never_a_mirror() -> None:
    square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    # the targets pulled symmetrically off a unit square scaled by 2: the fit is the scale by 2 exactly
    target = 2 * square + np.array([[-0.1, 0.0], [0.1, 0.0], [0.1, 0.0], [-0.1, 0.0]])
    fit = similarity_transform(square, target)
    # x stretched by 2.2, y by 2: the least-squares scale is their mean (Umeyama: tr(D S) / var = 1.05 / 0.5)
    np.testing.assert_allclose(fit, [[2.1, 0, -0.05], [0, 2.1, -0.05]], atol=1e-9)
    points = np.random.default_rng(1).uniform(0, 10, (5, 2))
    assert np.linalg.det(similarity_transform(points, points * [-1, 1])[:, :2]) > 0  # a mirror image: no mirror fit
    with pytest.raises(ValueError, match="same point"):
        similarity_transform(np.zeros((3, 2)), square[:3])


def test_arcface_maps_the_five_points_onto_the_template() -> None:
    # a face whose five points are the 112 template seen through the inverse of KNOWN
    template = np.asarray(ARCFACE_TEMPLATE, dtype=np.float64)
    face = _face(*apply_affine(template, invert_affine(KNOWN)))
    crop, transform = align_face(np.zeros((300, 300, 3), np.uint8), face, style="arcface")
    assert crop.shape == (112, 112, 3)
    np.testing.assert_allclose(transform, KNOWN, atol=1e-6)
    np.testing.assert_allclose(apply_affine(arcface_points(face), transform), template, atol=1e-6)
    _, transform_128 = align_face(np.zeros((300, 300, 3), np.uint8), face, style="arcface", size=128)
    np.testing.assert_allclose(transform_128, KNOWN + [[0, 0, 8.0], [0, 0, 0]], atol=1e-6)  # template moved 8 px
    with pytest.raises(ValueError, match="112 or 128"):
        arcface_template(256)


def test_custom_template_from_json(tmp_path) -> None:
    path = tmp_path / "eyes_nose.json"
    path.write_text(
        json.dumps({"points": ["right_eye", "left_eye", 30], "positions": [[0.3, 0.4], [0.7, 0.4], [0.5, 0.6]]})
    )
    template = load_template(path)
    assert template.groups == (tuple(range(36, 42)), tuple(range(42, 48)), (30,))
    size = 200
    target = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6]]) * size - 0.5  # crop edges at -0.5 and size - 0.5
    right_eye, left_eye, nose = apply_affine(target, invert_affine(KNOWN))
    face = _face(right_eye, left_eye, nose, (0.0, 0.0), (1.0, 0.0))
    crop, transform = align_face(np.zeros((64, 64), np.uint8), face, style="custom", size=size, template=template)
    assert crop.shape == (size, size)  # grey in, grey out
    np.testing.assert_allclose(transform, KNOWN, atol=1e-6)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ('{"positions": [[0, 0], [1, 1]]}', "expected"),
        ('{"points": [30, 68], "positions": [[0, 0], [1, 1]]}', "0..67"),
        ('{"points": [30, "nose_tip"], "positions": [[0, 0], [1, 1]]}', "region"),
        ('{"points": [30, 31], "positions": [[0, 0], [1, 1.5]]}', r"\[0, 1\]"),
        ('{"points": [30, 31], "positions": [[0, 0]]}', "positions of shape"),
        ('{"points": [30], "positions": [[0, 0]]}', "at least 2"),
    ],
)
def test_bad_templates_are_one_line(tmp_path, content, message) -> None:
    path = tmp_path / "t.json"
    path.write_text(content)
    with pytest.raises(TemplateError, match=message) as error:
        load_template(path)
    assert "\n" not in str(error.value)


def test_style_and_template_must_agree() -> None:
    face = _face((30, 40), (70, 40), (50, 60), (35, 80), (65, 80))
    image = np.zeros((100, 100, 3), np.uint8)
    with pytest.raises(ValueError, match="template"):
        align_face(image, face, style="custom")
    with pytest.raises(ValueError, match="template"):
        align_face(image, face, style="ffhq", template=Template(((30,), (31,)), np.array([[0.0, 0.0], [1.0, 1.0]])))
    with pytest.raises(ValueError, match="unknown style"):
        align_face(image, face, style="dlib")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="keypoints"):
        align_face(image, face[:5])
    with pytest.raises(ValueError, match="uint8"):
        align_face(image.astype(np.float32), face)


# --- the FFHQ recipe's square ----------------------------------------------------------------------


def test_ffhq_quad_of_an_upright_face_by_hand() -> None:
    # eyes at (30, 40) and (70, 40), mouth corners at (35, 80) and (65, 80):
    # eye_avg = (50, 40), eye_to_eye = (40, 0), mouth_avg = (50, 80), eye_to_mouth = (0, 40);
    # x = (40, 0) - flipud((0, 40)) * [-1, 1] = (40, 0) - (-40, 0) = (80, 0), unit (1, 0),
    # times max(2 * 40, 1.8 * 40) = 80 -> x = (80, 0); y = flipud(x) * [-1, 1] = (0, 80);
    # c = (50, 40) + 0.1 * (0, 40) = (50, 44); qsize = 2 * 80.
    quad, qsize = ffhq_quad(_face((30, 40), (70, 40), (50, 60), (35, 80), (65, 80)))
    np.testing.assert_allclose(quad, [[-30, -36], [-30, 124], [130, 124], [130, -36]], atol=1e-6)
    assert qsize == pytest.approx(160, abs=1e-6)


def test_ffhq_quad_of_a_tilted_face_by_hand() -> None:
    # eyes at (0, 0) and (40, 30): eye_to_eye = (40, 30), length 50, eye_avg = (20, 15);
    # mouth corners (0, 33), (10, 37): mouth_avg = (5, 35), eye_to_mouth = (-15, 20), length 25;
    # x = (40, 30) - flipud((-15, 20)) * [-1, 1] = (40, 30) - (-20, -15) = (60, 45), unit (0.8, 0.6),
    # times max(2 * 50, 1.8 * 25) = 100 -> x = (80, 60); y = flipud(x) * [-1, 1] = (-60, 80);
    # c = (20, 15) + 0.1 * (-15, 20) = (18.5, 17); qsize = 2 * 100.
    quad, qsize = ffhq_quad(_face((0, 0), (40, 30), (20, 25), (0, 33), (10, 37)))
    expected = [[18.5 - 80 + 60, 17 - 60 - 80], [18.5 - 80 - 60, 17 - 60 + 80], [18.5 + 80 - 60, 17 + 60 + 80]]
    expected.append([18.5 + 80 + 60, 17 + 60 - 80])
    np.testing.assert_allclose(quad, expected, atol=1e-6)
    assert qsize == pytest.approx(200, abs=1e-6)
    # the crop's transform takes the square's corners to the crop's corners
    transform = quad_transform(quad, 256)
    corners = [[-0.5, -0.5], [-0.5, 255.5], [255.5, 255.5], [255.5, -0.5]]
    np.testing.assert_allclose(apply_affine(quad, transform), corners, atol=1e-6)
    _, from_align = align_face(np.zeros((50, 50, 3), np.uint8), _face((0, 0), (40, 30), (20, 25), (0, 33), (10, 37)))
    np.testing.assert_allclose(from_align, transform, atol=1e-9)


# --- a real face turned and scaled ----------------------------------------------------------------


@pytest.fixture(scope="module")
def astronaut_face() -> tuple[np.ndarray, np.ndarray]:
    """The astronaut and her points from the shipped model on the Haar detector's box (deterministic)."""
    image = samples.astronaut()
    (face,) = fkp.detect_keypoints(image, detector="haar")
    return image, np.asarray(face.keypoints, dtype=np.float64)


def _mean_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def _turned_and_scaled(image: np.ndarray, points: np.ndarray) -> list[tuple[str, np.ndarray, np.ndarray]]:
    cases = [(f"turned {d}", *rotate_image(image, points, d)) for d in (0, 30, 60, 90)]
    height, width = image.shape[:2]
    for scale in (0.5, 2.0):
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=interpolation)
        cases.append((f"scaled {scale}", resized, (points + 0.5) * scale - 0.5))  # pixel centres kept
    return cases


@pytest.mark.parametrize("style", ["ffhq", "arcface"])
def test_turned_and_scaled_faces_align_alike(astronaut_face, style) -> None:
    image, points = astronaut_face
    upright, _ = align_face(image, points, style=style)
    # the measure is not blind: the same face aligned with its points 3 px to the right differs by far more
    assert _mean_error(align_face(image, points + [3.0, 0.0], style=style)[0], upright) > 6.0
    for name, moved, moved_points in _turned_and_scaled(image, points):
        crop, _ = align_face(moved, moved_points, style=style)
        error = _mean_error(crop, upright)
        # about 1.5 grey levels (of 255) for the turns, 4 for half the size (detail lost), 0.8 for twice
        assert error < (5.0 if name == "scaled 0.5" else 2.0), f"{name}: {error:.2f}"


def test_points_predicted_on_the_turned_face_align_alike(astronaut_face) -> None:
    """The points follow the face: the shipped model run again on each turned or scaled photo (given
    the box of the moved points) gives crops within 6 grey levels of the upright one (3-5 measured)."""
    image, points = astronaut_face
    upright, _ = align_face(image, points, style="arcface")
    model = fkp.predict.load_model()
    for name, moved, moved_points in _turned_and_scaled(image, points):
        predicted = model.predict(moved, keypoints_box(moved_points)[None])[0]
        error = _mean_error(align_face(moved, predicted, style="arcface")[0], upright)
        assert error < 6.0, f"{name}: {error:.2f}"


def test_large_faces_are_shrunk_first_and_still_exact(astronaut_face) -> None:
    image, points = astronaut_face
    small, transform = align_face(image, points, style="ffhq", size=64)  # no shrink
    big = cv2.resize(image, (1024, 1024), interpolation=cv2.INTER_LINEAR)
    big_points = (points + 0.5) * 2 - 0.5
    quad, qsize = ffhq_quad(big_points)
    assert int(np.floor(qsize / 64 * 0.5)) > 1  # the recipe shrinks this one
    shrunk, big_transform = align_face(big, big_points, style="ffhq", size=64)
    np.testing.assert_allclose(apply_affine(big_points, big_transform), apply_affine(points, transform), atol=1e-6)
    assert _mean_error(shrunk, small) < 2.0


# --- faces at the photo's edge ----------------------------------------------------------------------


@pytest.mark.parametrize("style", ["ffhq", "arcface"])
def test_a_face_partly_outside_the_photo_is_padded(astronaut_face, style) -> None:
    image, points = astronaut_face
    whole, transform = align_face(image, points, style=style)
    cut_at = int(points[:, 0].mean())  # the face's right half (on screen) is gone
    crop, cut_transform = align_face(image[:, :cut_at], points, style=style)
    assert crop.shape == whole.shape and crop.dtype == np.uint8
    np.testing.assert_allclose(cut_transform, transform, atol=1e-9)  # the points decide, not the photo
    # away from the cut the crop is the same; past it, filled by blurred reflection (ffhq) or black (arcface);
    # the recipe's blur reaches into the photo by a third of the padding, so compare the half away from the cut
    edge = apply_affine(np.array([[cut_at - 0.5, points[:, 1].mean()]]), transform)[0, 0]
    inside = slice(0, int(edge / 2))
    assert _mean_error(crop[:, inside], whole[:, inside]) < 2.0
    if style == "ffhq":
        assert crop[:, int(edge) + 8 :].std() > 5  # filled with something like the photo, not one colour


def test_a_face_far_outside_the_photo_does_not_crash() -> None:
    face = _face((-500, -400), (-440, -400), (-470, -370), (-495, -340), (-445, -340))
    crop, _ = align_face(np.full((40, 30, 3), 90, np.uint8), face, style="ffhq", size=128)
    assert crop.shape == (128, 128, 3) and (crop == 90).all()  # the photo's colour, not a padding the size of the gap
    crop, _ = align_face(np.full((40, 30, 3), 90, np.uint8), face, style="arcface")
    assert crop.shape == (112, 112, 3) and crop.max() == 0


def test_align_face_is_public() -> None:
    assert fkp.align_face is align_face and "align_face" in fkp.__all__


# --- fkp align ----------------------------------------------------------------------------------------


class _TwoFaces:
    """A stub detector: one large face box and one small one on every photo."""

    def detect(self, image: np.ndarray) -> np.ndarray:
        return np.array([[180, 70, 90, 100], [20, 20, 20, 24]], dtype=np.float32)


@pytest.fixture
def cli(monkeypatch, tmp_path, mean_shape_model):
    """Run in tmp_path with the stub model and the two-face detector; writes astronaut.jpg."""
    monkeypatch.setattr(fkp.predict, "load_model", lambda path=None, **_: mean_shape_model())
    monkeypatch.setattr(fkp.cli.align, "build_detector", lambda args: _TwoFaces())
    monkeypatch.chdir(tmp_path)
    assert cv2.imwrite(str(tmp_path / "astronaut.jpg"), samples.astronaut()[:, :, ::-1])
    return tmp_path


def test_cli_writes_crops_and_records(cli, capsys) -> None:
    (cli / "photos").mkdir()
    assert cv2.imwrite(str(cli / "photos" / "astronaut.png"), samples.astronaut()[:, :, ::-1])
    assert main(["align", "astronaut.jpg", "photos", "-o", "out", "--style", "arcface", "--min-size", "10"]) == 0
    assert sorted(p.name for p in (cli / "out").iterdir()) == [
        "astronaut_2_face0.png",  # the second input with the same stem gets another name
        "astronaut_2_face1.png",
        "astronaut_face0.png",
        "astronaut_face1.png",
        "faces.jsonl",
    ]
    records = [json.loads(line) for line in (cli / "out" / "faces.jsonl").read_text().splitlines()]
    assert [(r["source"], r["face"], r["crop"]) for r in records] == [
        ("astronaut.jpg", 0, "astronaut_face0.png"),
        ("astronaut.jpg", 1, "astronaut_face1.png"),
        ("photos/astronaut.png", 0, "astronaut_2_face0.png"),
        ("photos/astronaut.png", 1, "astronaut_2_face1.png"),
    ]
    first = records[0]
    assert first["style"] == "arcface" and first["size"] == 112 and first["box"] == [180, 70, 90, 100]
    assert len(first["keypoints"]) == NUM_KEYPOINTS
    # the record's transform is the fit of the record's points (rounded to 0.01 px) onto the template
    fit = similarity_transform(arcface_points(np.array(first["keypoints"])), ARCFACE_TEMPLATE)
    np.testing.assert_allclose(np.array(first["transform"]), fit, atol=1e-2)
    crop = cv2.imread(str(cli / "out" / "astronaut_face0.png"))
    assert crop.shape == (112, 112, 3)
    image = samples.astronaut()
    expected, _ = align_face(image, np.array(first["keypoints"]), style="arcface")
    assert _mean_error(crop[:, :, ::-1], expected) < 3  # JPEG input: the decoded photo differs a little
    assert "2 images, 4 faces aligned" in capsys.readouterr().out


def test_cli_min_size_skips_and_counts(cli, capsys) -> None:
    assert main(["align", "astronaut.jpg", "-o", "out", "--min-size", "30", "--size", "64"]) == 0
    assert sorted(p.name for p in (cli / "out").iterdir()) == ["astronaut_face0.png", "faces.jsonl"]
    assert cv2.imread(str(cli / "out" / "astronaut_face0.png")).shape == (64, 64, 3)
    assert "1 images, 1 faces aligned, 1 smaller than 30 px skipped" in capsys.readouterr().out


def test_cli_refuses_to_replace_without_overwrite(cli, capsys) -> None:
    assert main(["align", "astronaut.jpg", "-o", "out"]) == 0
    records = (cli / "out" / "faces.jsonl").read_bytes()
    crop = (cli / "out" / "astronaut_face0.png").read_bytes()
    capsys.readouterr()
    assert main(["align", "astronaut.jpg", "-o", "out", "--style", "arcface"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "exists" in err and "--overwrite" in err
    assert (cli / "out" / "faces.jsonl").read_bytes() == records
    assert (cli / "out" / "astronaut_face0.png").read_bytes() == crop
    assert main(["align", "astronaut.jpg", "-o", "out", "--style", "arcface", "--overwrite"]) == 0
    assert cv2.imread(str(cli / "out" / "astronaut_face0.png")).shape == (112, 112, 3)
    assert len((cli / "out" / "faces.jsonl").read_text().splitlines()) == 1  # the small face skipped


def test_cli_never_replaces_an_input(cli, capsys) -> None:
    (cli / "out").mkdir()
    (cli / "astronaut.jpg").rename(cli / "out" / "x.jpg")
    assert cv2.imwrite(str(cli / "out" / "x_face0.png"), samples.astronaut()[:, :, ::-1])
    before = (cli / "out" / "x_face0.png").read_bytes()
    assert main(["align", "out", "-o", "out", "--overwrite"]) == 2
    assert "is the input" in capsys.readouterr().err
    assert (cli / "out" / "x_face0.png").read_bytes() == before


def test_cli_never_replaces_a_link_by_a_file(cli, capsys) -> None:
    (cli / "out").mkdir()
    (cli / "keep.txt").write_text("mine")
    (cli / "out" / "faces.jsonl").symlink_to(cli / "keep.txt")
    assert main(["align", "astronaut.jpg", "-o", "out", "--overwrite"]) == 2
    assert "not a regular file" in capsys.readouterr().err
    assert (cli / "out" / "faces.jsonl").is_symlink() and (cli / "keep.txt").read_text() == "mine"


def test_cli_unreadable_input_is_one_line_and_the_run_goes_on(cli, capsys) -> None:
    (cli / "broken.jpg").write_bytes(b"not an image")
    assert main(["align", "broken.jpg", "missing.jpg", "astronaut.jpg", "-o", "out", "--min-size", "1"]) == 1
    captured = capsys.readouterr()
    errors = captured.err.strip().splitlines()
    assert errors[0] == "fkp align: error: missing.jpg: no such file or folder"  # found when the inputs are listed
    assert len(errors) == 2 and errors[1].startswith("fkp align: error: broken.jpg: ")
    assert "1 images, 2 faces aligned, 2 failed" in captured.out
    assert len((cli / "out" / "faces.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--style", "custom"], "needs --template"),
        (["--template", "t.json"], "for --style custom"),
        (["--style", "arcface", "--size", "100"], "112 or 128"),
        (["--size", "100000"], "at most 4096"),
        (["--style", "custom", "--template", "missing.json"], "--template missing.json"),
    ],
)
def test_cli_bad_options_exit_2(cli, capsys, argv, message) -> None:
    assert main(["align", "astronaut.jpg", "-o", "out", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (cli / "out").exists()


def test_cli_custom_template(cli) -> None:
    (cli / "t.json").write_text(
        json.dumps({"points": ["right_eye", "left_eye"], "positions": [[0.3, 0.5], [0.7, 0.5]]})
    )
    assert (
        main(["align", "astronaut.jpg", "-o", "out", "--style", "custom", "--template", "t.json", "--size", "50"]) == 0
    )
    record = json.loads((cli / "out" / "faces.jsonl").read_text().splitlines()[0])
    eyes = [np.mean(np.array(record["keypoints"])[REGIONS[eye]], axis=0) for eye in ("right_eye", "left_eye")]
    np.testing.assert_allclose(
        apply_affine(np.array(eyes), np.array(record["transform"])),
        [[14.5, 24.5], [34.5, 24.5]],
        atol=0.02,  # points rounded to 0.01 px
    )


def test_cli_with_the_shipped_model_and_haar(tmp_path, monkeypatch, capsys, astronaut_face) -> None:
    """No stub: the Haar detector and the shipped model, as a user runs it."""
    monkeypatch.chdir(tmp_path)
    image, points = astronaut_face
    assert cv2.imwrite("astronaut.png", image[:, :, ::-1])  # lossless: the crop can be checked exactly
    assert main(["align", "astronaut.png", "-o", "out", "--detector", "haar"]) == 0
    (record,) = [json.loads(line) for line in (tmp_path / "out" / "faces.jsonl").read_text().splitlines()]
    assert (record["source"], record["face"], record["style"], record["size"]) == ("astronaut.png", 0, "ffhq", 256)
    np.testing.assert_allclose(record["keypoints"], points, atol=0.01)
    expected, transform = align_face(image, points)
    np.testing.assert_allclose(record["transform"], transform, atol=1e-4)
    crop = cv2.imread(str(tmp_path / "out" / "astronaut_face0.png"))[:, :, ::-1]
    assert _mean_error(crop, expected) < 0.01
    assert "1 images, 1 faces aligned" in capsys.readouterr().out


# --- fkp align over many photos: the bulk runner, resumed ---------------------------------------------


def _records(folder) -> list[dict]:
    """The records of OUT/faces.jsonl in a stable order (a parallel run writes them as images finish)."""
    lines = (folder / "faces.jsonl").read_text().splitlines()
    return sorted((json.loads(line) for line in lines), key=lambda r: (r["source"], r["face"]))


def _crops(folder) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.glob("*.png"))}


def _photos(folder, count: int) -> None:
    """``count`` photos of the astronaut, every other one mirrored, in ``folder`` and a sub-folder."""
    (folder / "sub").mkdir(parents=True)
    image = samples.astronaut()
    for k in range(count):
        where = folder / "sub" if k % 3 == 2 else folder
        assert cv2.imwrite(str(where / f"p{k}.png"), (image if k % 2 else image[:, ::-1])[:, :, ::-1])


def test_cli_rerun_resumes_instead_of_refusing(cli, capsys) -> None:
    assert main(["align", "astronaut.jpg", "-o", "out", "--min-size", "10"]) == 0
    before, crops = (cli / "out" / "faces.jsonl").read_bytes(), _crops(cli / "out")
    capsys.readouterr()
    assert main(["align", "astronaut.jpg", "-o", "out", "--min-size", "10"]) == 0
    out = capsys.readouterr().out
    assert "0 images, 0 faces aligned" in out and "1 images already in" in out
    assert (cli / "out" / "faces.jsonl").read_bytes() == before and _crops(cli / "out") == crops


def test_cli_recursive_and_from_list(cli) -> None:
    _photos(cli / "photos", 3)
    assert main(["align", "photos", "-r", "-o", "out", "--min-size", "10"]) == 0
    assert sorted({r["source"] for r in _records(cli / "out")}) == [
        "photos/p0.png",
        "photos/p1.png",
        "photos/sub/p2.png",
    ]
    (cli / "list.txt").write_text("# two photos\nphotos/p1.png\n\nphotos/sub/p2.png\n")
    assert main(["align", "--from", "list.txt", "-o", "out2", "--min-size", "10"]) == 0
    assert [(r["source"], r["crop"]) for r in _records(cli / "out2")] == [
        ("photos/p1.png", "p1_face0.png"),
        ("photos/p1.png", "p1_face1.png"),
        ("photos/sub/p2.png", "p2_face0.png"),
        ("photos/sub/p2.png", "p2_face1.png"),
    ]
    assert main(["align", "--from", "missing.txt", "-o", "out3"]) == 2


def test_cli_interrupted_and_rerun_gives_the_records_of_one_run(cli, monkeypatch, capsys) -> None:
    _photos(cli / "photos", 5)
    argv = ["align", "photos", "-r", "-o", "out", "--min-size", "10", "--style", "arcface"]
    assert main([*argv[:4], "whole", *argv[5:]]) == 0
    whole, whole_crops = _records(cli / "whole"), _crops(cli / "whole")
    assert len(whole) == 10
    real = fkp.cli.align._align_image
    calls = []

    def interrupted(args, item, *rest):  # Ctrl-C while the third photo's crops are written
        calls.append(item.name)
        if len(calls) == 3:
            real(args, item, *rest)  # its crops are on disk, its records not yet
            raise KeyboardInterrupt
        return real(args, item, *rest)

    monkeypatch.setattr(fkp.cli.align, "_align_image", interrupted)
    assert main(argv) == 130
    assert "interrupted: run the same command again" in capsys.readouterr().out
    assert len(_records(cli / "out")) == 4  # the two finished photos' faces, no more
    monkeypatch.setattr(fkp.cli.align, "_align_image", real)
    assert main(argv) == 0
    assert "2 images already in" in capsys.readouterr().out
    assert _records(cli / "out") == whole  # no face twice, none missing
    assert _crops(cli / "out") == whole_crops


def test_cli_resume_reruns_images_with_cut_or_missing_records(cli, capsys) -> None:
    _photos(cli / "photos", 3)
    argv = ["align", "photos", "-o", "out", "--min-size", "10"]
    assert main(argv) == 0
    whole = _records(cli / "out")
    lines = (cli / "out" / "faces.jsonl").read_bytes().splitlines(keepends=True)
    # as a run killed in its writes would leave them: one image with one of its two lines, one line cut short
    (cli / "out" / "faces.jsonl").write_bytes(lines[0] + lines[2] + lines[3][:40])
    capsys.readouterr()
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "3 lines of" in captured.err and "0 images already in" not in captured.out
    assert _records(cli / "out") == whole


def test_cli_resume_refuses_another_style(cli, capsys) -> None:
    assert main(["align", "astronaut.jpg", "-o", "out"]) == 0
    capsys.readouterr()
    assert main(["align", "astronaut.jpg", "-o", "out", "--size", "64"]) == 2
    err = capsys.readouterr().err
    assert "made with --style ffhq --size 256" in err and "--overwrite" in err


def _real_photos(folder, count: int) -> None:
    """Lossless photos of the astronaut (the Haar detector finds her face), mirrored and not."""
    folder.mkdir()
    image = samples.astronaut()
    for k in range(count):
        assert cv2.imwrite(str(folder / f"p{k}.png"), (image if k % 2 else image[:, ::-1])[:, :, ::-1])


def test_cli_two_jobs_align_as_one(tmp_path, monkeypatch) -> None:
    """No stub (workers build their own pipeline): the Haar detector and the shipped model."""
    monkeypatch.chdir(tmp_path)
    _real_photos(tmp_path / "photos", 4)
    base = ["align", "photos", "--detector", "haar", "--style", "arcface"]
    assert main([*base, "-o", "one", "--jobs", "1"]) == 0
    assert main([*base, "-o", "two", "--jobs", "2"]) == 0
    assert len(_records(tmp_path / "one")) == 4
    assert _records(tmp_path / "two") == _records(tmp_path / "one")
    assert _crops(tmp_path / "two") == _crops(tmp_path / "one")


def test_cli_killed_and_rerun_gives_the_records_of_one_run(tmp_path) -> None:
    """A run SIGKILLed as soon as its first records are on disk, then run again."""
    import os
    import signal
    import subprocess
    import sys
    import time

    _real_photos(tmp_path / "photos", 8)
    command = [sys.executable, "-m", "fkp", "align", "photos", "--detector", "haar", "--style", "arcface"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(fkp.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    assert subprocess.run([*command, "-o", "whole"], cwd=tmp_path, env=env, capture_output=True).returncode == 0
    process = subprocess.Popen(
        [*command, "-o", "out"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    records = tmp_path / "out" / "faces.jsonl"
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if records.is_file() and records.stat().st_size > 0:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait()
    assert process.returncode == -signal.SIGKILL  # killed mid-run, not finished
    assert subprocess.run([*command, "-o", "out"], cwd=tmp_path, env=env, capture_output=True).returncode == 0
    assert _records(tmp_path / "out") == _records(tmp_path / "whole")  # no face twice, none missing
    assert _crops(tmp_path / "out") == _crops(tmp_path / "whole")
