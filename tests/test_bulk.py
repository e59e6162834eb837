"""Bulk runs (fkp.bulk, fkp detect -r/--from/--jobs): streamed, resumable, parallel, bad inputs."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from fkp import samples
from fkp.bulk import WORKER_DIED, run_images
from fkp.cli import main
from fkp.detect import Landmarker
from fkp.face import Face
from fkp.inputs import iter_inputs
from fkp.landmarks import NUM_KEYPOINTS
from fkp.model_file import sha256_of
from fkp.records import JsonLinesWriter

REPO = Path(__file__).resolve().parents[1]


def _save(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def make_collection(root: Path, count: int = 12) -> list[Path]:
    """``count`` photos in ``root`` and ``root/sub``: the astronaut at several sizes, mirrored, and blanks."""
    astronaut = samples.astronaut()
    paths = []
    for i in range(count):
        if i % 4 == 3:
            image = np.full((120, 160, 3), 40 * (i % 5), dtype=np.uint8)  # no face
        else:
            side = 512 - 48 * (i % 4) - 8 * (i // 4)
            image = cv2.resize(astronaut, (side, side), interpolation=cv2.INTER_AREA)
            image = image[:, ::-1].copy() if i % 2 else image
        path = root / ("sub" if i % 3 == 2 else "") / f"photo_{i:02d}.png"
        _save(path, image)
        paths.append(path)
    return paths


def _records(path: Path) -> dict[str, dict]:
    """The output's records by path, checking that each path is there once."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    by_path = {record["path"]: record for record in lines}
    assert len(by_path) == len(lines), "an image was written twice"
    return by_path


@pytest.fixture
def collection(tmp_path, monkeypatch) -> list[Path]:
    monkeypatch.chdir(tmp_path)
    return make_collection(Path("photos"))


def test_iter_inputs_walks_folders_globs_and_list_files(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ["a/1.jpg", "a/2.PNG", "a/notes.txt", "a/b/3.jpg", "a/b/c/4.png", "x.jpg"]:
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).write_bytes(b"")
    assert list(iter_inputs(["a"])) == ["a/1.jpg", "a/2.PNG"]
    assert list(iter_inputs(["a"], recursive=True)) == ["a/1.jpg", "a/2.PNG", "a/b/3.jpg", "a/b/c/4.png"]
    assert list(iter_inputs(["a/*.jpg", "a/**/*.png"], recursive=True)) == ["a/1.jpg", "a/b/c/4.png"]
    Path("list.txt").write_text("# photos\nx.jpg\n\na/b\nmissing.jpg\n")
    assert list(iter_inputs([], list_file="list.txt")) == ["x.jpg", "a/b/3.jpg", "missing.jpg"]
    assert list(iter_inputs(["nothing/*.jpg"])) == ["nothing/*.jpg"]  # a glob with no match is reported


def test_bulk_run_streams_one_line_per_image_and_an_unreadable_one_is_a_line_with_its_error(collection, capsys) -> None:
    Path("photos/sub/broken.jpg").write_bytes(b"not a JPEG")
    assert main(["detect", "-r", "photos", "missing.jpg", "--json", "out.jsonl", "--jobs", "1"]) == 1
    records = _records(Path("out.jsonl"))
    assert set(records) == {str(p) for p in collection} | {"photos/sub/broken.jpg", "missing.jpg"}
    assert records["photos/sub/broken.jpg"]["error"] and records["photos/sub/broken.jpg"]["faces"] == []
    assert "no such file" in records["missing.jpg"]["error"].lower()
    for path in collection:
        record = records[str(path)]
        assert record["error"] is None and record["sha256"] == sha256_of(path) and record["labels"] == "300w"
        image = cv2.imread(str(path))
        assert (record["width"], record["height"]) == (image.shape[1], image.shape[0])
        faces = record["faces"]
        assert len(faces) == (0 if int(path.stem[-2:]) % 4 == 3 else 1)
        for face in faces:
            assert len(face["box"]) == 4 and np.array(face["keypoints"]).shape == (NUM_KEYPOINTS, 2)
    captured = capsys.readouterr()
    assert "14 images, 9 faces, 2 failures" in captured.out


def test_jobs_2_gives_the_results_of_jobs_1(collection) -> None:
    assert main(["detect", "photos", "-r", "--json", "one.jsonl", "--jobs", "1"]) == 0
    assert main(["detect", "photos", "-r", "--json", "two.jsonl", "--jobs", "2", "--batch-size", "2"]) == 0
    assert _records(Path("one.jsonl")) == _records(Path("two.jsonl"))


def test_rerun_skips_what_is_done_and_runs_changed_images_and_cut_lines_again(collection, capsys) -> None:
    assert main(["detect", "photos", "-r", "--json", "out.jsonl", "--jobs", "1"]) == 0
    first = _records(Path("out.jsonl"))
    capsys.readouterr()
    assert main(["detect", "photos", "-r", "--json", "out.jsonl", "--jobs", "1"]) == 0  # no --overwrite needed
    assert "0 images" in capsys.readouterr().out and _records(Path("out.jsonl")) == first
    # an image changed since, and a last line cut short by a killed run: both are run again
    _save(collection[0], np.zeros((64, 64, 3), np.uint8))
    text = Path("out.jsonl").read_text()
    cut = next(p for p in map(str, collection[1:]) if f'"path": "{p}"' in text.splitlines()[-1])
    Path("out.jsonl").write_text(text[: -len(text.splitlines()[-1]) // 2 - 1])
    assert main(["detect", "photos", "-r", "--json", "out.jsonl", "--jobs", "1"]) == 0
    assert "2 images" in capsys.readouterr().out
    again = _records(Path("out.jsonl"))
    assert again[cut] == first[cut] and again[str(collection[0])]["faces"] == []
    assert again[str(collection[0])]["sha256"] == sha256_of(collection[0])
    # --overwrite starts over
    assert main(["detect", "photos", "-r", "--json", "out.jsonl", "--jobs", "1", "--overwrite"]) == 0
    assert f"{len(collection)} images" in capsys.readouterr().out


def _bulk_command(output: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "fkp", "detect", "photos", "-r", "--json", output, "--batch-size", "1", *extra]


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def _wait_for_lines(path: Path, count: int, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.02)
    pytest.fail(f"{path} did not reach {count} lines (exit code {process.poll()})")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_run_killed_at_a_random_point_and_run_again_gives_the_uninterrupted_results(collection, jobs) -> None:
    env = _environment()
    subprocess.run(_bulk_command("whole.jsonl", "--jobs", jobs), env=env, check=True, capture_output=True)
    whole = _records(Path("whole.jsonl"))
    assert len(whole) == len(collection)
    process = subprocess.Popen(
        _bulk_command("out.jsonl", "--jobs", jobs),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait_for_lines(Path("out.jsonl"), random.Random(int(jobs)).randint(1, len(collection) - 2), process)
    os.killpg(process.pid, signal.SIGKILL)  # the run and its workers, with no clean-up at all
    process.wait()
    partial = Path("out.jsonl").read_bytes().count(b"\n")
    assert 0 < partial < len(collection)
    done = subprocess.run(_bulk_command("out.jsonl", "--jobs", jobs), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _records(Path("out.jsonl")) == whole


def test_ctrl_c_keeps_every_finished_result_and_exits_130(collection) -> None:
    process = subprocess.Popen(
        _bulk_command("out.jsonl", "--jobs", "2"),
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for_lines(Path("out.jsonl"), 2, process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted" in out
    lines = Path("out.jsonl").read_text().splitlines()
    assert len(lines) >= 2 and all(json.loads(line)["error"] is None for line in lines)


class _Poisoned:
    """A landmarker whose process dies (SIGKILL, as the OOM killer does) on one image."""

    def detect(self, image: np.ndarray) -> list[Face]:
        if image[0, 0, 0] == 13:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.01)
        return [Face(box=[0, 0, 10, 10], keypoints=np.full((NUM_KEYPOINTS, 2), float(image[0, 0, 0])))]


def test_a_worker_that_dies_loses_no_other_result_and_its_image_is_retried_once_then_reported() -> None:
    images = [np.full((8, 8, 3), value, dtype=np.uint8) for value in range(40)]
    results = list(run_images(images, _Poisoned, jobs=2, batch_size=3))
    assert sorted(result.index for result in results) == list(range(40))  # each once
    failed = [result for result in results if result.error is not None]
    assert [(result.index, result.error) for result in failed] == [(13, WORKER_DIED)]
    for result in results:
        if result.index != 13:
            assert result.faces[0].keypoints[0, 0] == result.index


def test_landmarker_run_yields_one_result_per_image_in_order_and_as_detect_does() -> None:
    landmarker = Landmarker()
    astronaut = samples.astronaut()
    images = [astronaut, np.zeros((50, 60, 3), np.uint8), astronaut[:, ::-1]]
    results = list(landmarker.run(images, batch_size=2))
    assert [result.index for result in results] == [0, 1, 2]
    for image, result in zip(images, results):
        expected = landmarker(image)
        assert len(result.faces) == len(expected) and (result.width, result.height) == (image.shape[1], image.shape[0])
        for face, reference in zip(result.faces, expected):
            np.testing.assert_allclose(face.keypoints, reference.keypoints, atol=1e-4)


def test_jsonl_writer_refuses_a_second_concurrent_run(tmp_path) -> None:
    first = JsonLinesWriter(tmp_path / "out.jsonl")
    try:
        with pytest.raises(BlockingIOError, match="another run"):
            JsonLinesWriter(tmp_path / "out.jsonl")
    finally:
        first.close()


def test_parquet_holds_the_records_of_json_lines(collection) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="needs pyarrow: pip install 'fkp[parquet]'")
    assert main(["detect", "photos", "-r", "--json", "out.jsonl", "--jobs", "1"]) == 0
    assert main(["detect", "photos", "-r", "--json", "out.parquet", "--jobs", "1"]) == 0
    records = _records(Path("out.jsonl"))
    rows = pq.read_table("out.parquet").to_pylist()
    assert len(rows) == len(records)
    for row in rows:
        record = records[row["path"]]
        assert row["sha256"] == record["sha256"] and len(row["boxes"]) == len(record["faces"])
        for points, face in zip(row["keypoints"], record["faces"]):
            np.testing.assert_allclose(points, face["keypoints"], atol=1e-3)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["-r", "photos", "--json", "out.jsonl", "-o", "drawn"], "a bulk run writes results only"),
        (["-r", "photos"], "a bulk run writes its results with --json"),
        (["--jobs", "2", "--json", "out.jsonl"], "a bulk run needs PATHs or --from LIST"),
        (["photos", "--json", "out.jsonl", "--address", "auto"], "--address is the Ray cluster of --engine ray"),
        (["--from", "nothing.txt", "--json", "out.jsonl"], "--from nothing.txt: no such file"),
    ],
)
def test_bulk_usage_errors_are_one_line_and_exit_2(collection, capfd, arguments, message) -> None:
    assert main(["detect", *arguments]) == 2
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0]
