"""``fkp detect`` and ``fkp video`` called in-process on tmp_path, with a stub keypoint model."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

import fkp.predict
from fkp import samples
from fkp.cli import main
from fkp.landmarks import NUM_KEYPOINTS
from fkp.predict import load_model as load_shipped_model


@pytest.fixture(autouse=True)
def stub_model(monkeypatch, tmp_path, mean_shape_model):
    """Every test runs in its own folder with the stub in place of the shipped model."""
    stub = mean_shape_model()
    monkeypatch.setattr(fkp.predict, "load_model", lambda path=None, **_: stub if path is None else load_shipped_model(path))
    monkeypatch.chdir(tmp_path)


def _save(path, rgb: np.ndarray) -> None:
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _truncated_jpeg(path) -> None:
    _save(path, samples.astronaut())
    path.write_bytes(path.read_bytes()[:5000])


def _stderr_lines(capfd) -> list[str]:
    """Stderr's lines, less the hint that YuNet's file is missing (tests/test_yunet.py checks it)."""
    lines = capfd.readouterr().err.splitlines()
    return [line for line in lines if line.strip() and "using the Haar face detector" not in line]


def test_no_path_writes_the_demo_image(tmp_path, capsys) -> None:
    assert main(["detect"]) == 0
    demo = cv2.imread(str(tmp_path / "fkp_demo.png"))
    assert demo is not None and demo.shape == (512, 512, 3)
    assert not np.array_equal(demo[:, :, ::-1], samples.astronaut())  # something was drawn
    out = capsys.readouterr().out
    assert "1 images, 1 faces" in out and "fkp_demo.png" in out


def test_one_image_with_json_and_output_file(tmp_path) -> None:
    _save(tmp_path / "astronaut.jpg", samples.astronaut())
    assert main(["detect", "astronaut.jpg", "-o", "drawn.png", "--json", "faces.json"]) == 0
    assert cv2.imread(str(tmp_path / "drawn.png")).shape == (512, 512, 3)
    report = json.loads((tmp_path / "faces.json").read_text())
    assert report["errors"] == []
    (image,) = report["images"]
    assert image["path"] == "astronaut.jpg" and (image["width"], image["height"]) == (512, 512)
    (face,) = image["faces"]
    assert len(face["box"]) == 4 and len(face["keypoints"]) == NUM_KEYPOINTS
    assert all(len(point) == 2 for point in face["keypoints"]) and face["score"] > 0


def test_labels_picks_the_head_of_a_labelling_convention_and_the_json_names_it(tmp_path, capfd, monkeypatch) -> None:
    """The shipped model answers in 300-W's convention, or with --labels udacity in the course set's:
    the points move by the annotators' differences (a few percent of the eye distance), not more."""
    monkeypatch.setattr(fkp.predict, "load_model", load_shipped_model)  # the shipped model, not the stub
    _save(tmp_path / "astronaut.jpg", samples.astronaut())
    reports = {}
    for labels in ("default", "udacity"):
        extra = [] if labels == "default" else ["--labels", labels]
        assert main(["detect", "astronaut.jpg", "--no-draw", "--json", f"{labels}.json", *extra]) == 0
        reports[labels] = json.loads((tmp_path / f"{labels}.json").read_text())
    assert (reports["default"]["labels"], reports["udacity"]["labels"]) == ("300w", "udacity")
    default, udacity = (np.array(reports[k]["images"][0]["faces"][0]["keypoints"]) for k in ("default", "udacity"))
    eye_distance = np.linalg.norm(default[36] - default[45])
    moved = np.linalg.norm(default - udacity, axis=1) / eye_distance
    assert 0.005 < moved.mean() < 0.06 and moved.max() < 0.15
    assert main(["detect", "astronaut.jpg", "--no-draw", "--labels", "ibug"]) == 2
    assert _stderr_lines(capfd)[-1].endswith("--labels ibug: the model has no head for it; it answers in 300w, udacity")


def test_passes_2_gives_every_face_an_upright_pass(tmp_path, monkeypatch) -> None:
    """Grace Hopper holds her head nearly upright: one pass by default, two with --passes 2, whose
    points move a little (a crop framed by the points found), not a lot."""
    from fkp.predict import KeypointModel

    monkeypatch.setattr(fkp.predict, "load_model", load_shipped_model)  # loaded for each run, so never shared
    crops_seen: list[int] = []
    network = KeypointModel.predict_crops

    def counting(self, crops, head=0):
        crops_seen.append(len(crops))
        return network(self, crops, head)

    monkeypatch.setattr(KeypointModel, "predict_crops", counting)
    _save(tmp_path / "hopper.jpg", samples.grace_hopper())
    faces = {}
    for passes in (1, 2):
        crops_seen.clear()
        argv = ["detect", "hopper.jpg", "--no-draw", "--json", f"{passes}.json", "--passes", str(passes)]
        assert main(argv) == 0
        (face,) = json.loads((tmp_path / f"{passes}.json").read_text())["images"][0]["faces"]
        faces[passes] = np.array(face["keypoints"])
        assert crops_seen == [1] * passes
    eye_distance = np.linalg.norm(faces[1][36] - faces[1][45])
    moved = np.linalg.norm(faces[2] - faces[1], axis=1) / eye_distance
    assert 0.002 < moved.mean() < 0.05


def test_no_face_is_success_and_no_draw_writes_no_image(tmp_path, capsys) -> None:
    _save(tmp_path / "coffee.png", samples.coffee())
    assert main(["detect", "coffee.png", "--no-draw", "--json", "-"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["images"][0]["faces"] == []
    assert "1 images, 0 faces" in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coffee.png"]


def test_default_output_name_for_one_image(tmp_path) -> None:
    _save(tmp_path / "face.jpg", samples.astronaut())
    assert main(["detect", "face.jpg"]) == 0
    assert (tmp_path / "face_fkp.jpg").is_file()


@pytest.mark.parametrize("kind", ["truncated", "text"])
def test_an_unreadable_file_exits_1_with_one_line_naming_it(tmp_path, capfd, kind: str) -> None:
    bad = tmp_path / "bad.jpg"
    if kind == "truncated":
        _truncated_jpeg(bad)
    else:
        bad.write_text("this is a text file, not a photo\n")
    assert main(["detect", "bad.jpg"]) == 1
    (line,) = _stderr_lines(capfd)
    assert "bad.jpg" in line and "Traceback" not in line
    assert not list(tmp_path.glob("bad_fkp*"))


def test_a_missing_path_exits_1(capfd) -> None:
    assert main(["detect", "nowhere.png"]) == 1
    (line,) = _stderr_lines(capfd)
    assert "nowhere.png" in line


def test_a_folder_with_bad_files_processes_the_rest(tmp_path, capfd) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    _save(photos / "a.png", samples.astronaut())
    _save(photos / "b.jpg", samples.grace_hopper())
    _save(photos / "c.png", samples.coffee())
    _truncated_jpeg(photos / "d_truncated.jpg")
    (photos / "e_text.jpg").write_text("not an image\n")
    (photos / "notes.txt").write_text("not an image either, and not an image name: skipped\n")
    assert main(["detect", "photos", "-o", "drawn", "--json", "all.json"]) == 1
    captured = capfd.readouterr()
    assert "3 images, 2 faces" in captured.out and "2 unreadable" in captured.out
    assert "d_truncated.jpg" in captured.err and "e_text.jpg" in captured.err and "notes.txt" not in captured.err
    assert sorted(p.name for p in (tmp_path / "drawn").iterdir()) == ["a_fkp.png", "b_fkp.jpg", "c_fkp.png"]
    report = json.loads((tmp_path / "all.json").read_text())
    assert [len(image["faces"]) for image in report["images"]] == [1, 1, 0]
    assert sorted(error["path"].rsplit("/", 1)[-1] for error in report["errors"]) == ["d_truncated.jpg", "e_text.jpg"]


def test_several_files_with_the_same_name_get_distinct_outputs(tmp_path) -> None:
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        _save(tmp_path / folder / "face.png", samples.astronaut())
    assert main(["detect", "x/face.png", "y/face.png"]) == 0
    assert sorted(p.name for p in (tmp_path / "fkp_detect").iterdir()) == ["face_fkp.png", "face_fkp_2.png"]


@pytest.mark.parametrize(
    "argv",
    [
        ["detect", "--min-size", "0"],
        ["detect", "--scale-factor", "1"],
        ["detect", "--bogus"],
        ["detect", "--passes", "3"],
        ["video"],
        ["video", "--smoothing", "-1", "x.mp4"],
        ["video", "x.mp4", "--camera", "0"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2


def test_an_image_name_as_output_for_several_inputs_exits_2(tmp_path, capfd) -> None:
    _save(tmp_path / "a.png", samples.astronaut())
    _save(tmp_path / "b.png", samples.coffee())
    assert main(["detect", "a.png", "b.png", "-o", "out.png"]) == 2
    assert "out.png" in _stderr_lines(capfd)[0] and not (tmp_path / "out.png").exists()


def test_help_states_the_exit_codes(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["detect", "--help"])
    assert "Exit code 0" in capsys.readouterr().out


def test_video_command(tmp_path, capsys) -> None:
    frame = cv2.resize(samples.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (256, 256))
    for _ in range(6):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    assert main(["video", "clip.avi", "--smoothing", "2"]) == 0
    assert (tmp_path / "clip_fkp.mp4").is_file()
    out = capsys.readouterr().out
    assert "6 frames, 6 faces" in out and "faces/s" in out


def test_video_command_with_an_unreadable_input_exits_1(tmp_path, capfd) -> None:
    (tmp_path / "broken.mp4").write_text("not a video\n")
    assert main(["video", "broken.mp4"]) == 1
    (line,) = _stderr_lines(capfd)  # FFmpeg's own complaints are silenced
    assert "broken.mp4" in line


def test_a_broken_model_file_exits_1_with_one_line(tmp_path, capfd) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not weights at all")
    assert main(["detect", "--model", str(bad), "-o", str(tmp_path / "out.png")]) == 1
    lines = _stderr_lines(capfd)
    assert len(lines) == 1 and "bad.safetensors" in lines[0] and "not a safetensors weights file" in lines[0]
