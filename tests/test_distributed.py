"""fkp.distributed on a local Ray instance, and fkp detect --engine ray without Ray."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from test_bulk import make_collection  # tests/ is on sys.path (pytest prepend import mode)

from fkp.bulk import run_images
from fkp.cli import main
from fkp.detect import Landmarker
from fkp.utils import ci_mode


def test_engine_ray_without_ray_says_how_to_install_it_in_one_line(tmp_path, monkeypatch, capfd) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails, as where it is not installed
    make_collection(Path("photos"), count=2)
    assert main(["detect", "photos", "--json", "out.jsonl", "--engine", "ray"]) == 2
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install 'fkp[ray]'" in lines[0]
    assert not Path("out.jsonl").exists()


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray instance with 2 CPUs; skipped where Ray is not installed, except on CI."""
    try:
        import ray
    except ImportError:
        if ci_mode():
            raise
        pytest.skip("needs Ray: pip install 'fkp[ray]'")
    for attempt in (1, 2):  # Ray gives its node 30 s to start: a busy machine may need a second try
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception as error:
            ray.shutdown()
            if attempt == 2 or "timed out during startup" not in str(error):
                raise
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


def test_ray_gives_the_numbers_of_the_local_runner(ray_local, tmp_path, monkeypatch) -> None:
    from fkp.distributed import detect_dataset, result_from_row

    monkeypatch.chdir(tmp_path)
    paths = [str(path.resolve()) for path in make_collection(Path("photos"), count=24)]
    local = {result.path: result for result in run_images(paths, Landmarker)}
    table = ray_local.data.from_items([{"path": path} for path in paths])
    rows = detect_dataset(table, batch_size=4, concurrency=2).take_all()
    assert sorted(row["path"] for row in rows) == sorted(paths)
    for index, row in enumerate(rows):
        result, expected = result_from_row(index, row), local[row["path"]]
        assert (result.sha256, result.width, result.height, result.error) == (
            expected.sha256,
            expected.width,
            expected.height,
            None,
        )
        assert len(result.faces) == len(expected.faces)
        for face, reference in zip(result.faces, expected.faces):
            np.testing.assert_allclose(face.box, reference.box, atol=1e-4)
            np.testing.assert_allclose(face.keypoints, reference.keypoints, atol=1e-4)
    # the images themselves, as ray.data.read_images decodes them: the same faces
    images = ray_local.data.read_images(str(Path("photos").resolve()), include_paths=True, mode="RGB")
    faces = {Path(row["path"]).name: len(row["boxes"]) for row in detect_dataset(images).take_all()}
    assert faces == {Path(path).name: len(result.faces) for path, result in local.items()}


def test_fkp_detect_engine_ray_writes_what_the_local_runner_writes(ray_local, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_collection(Path("photos"), count=8)
    assert main(["detect", "-r", "photos", "--json", "local.jsonl", "--jobs", "1"]) == 0
    assert main(["detect", "-r", "photos", "--json", "ray.jsonl", "--engine", "ray", "--jobs", "2"]) == 0
    local, ray = (
        {json.loads(line)["path"]: json.loads(line) for line in open(name)} for name in ("local.jsonl", "ray.jsonl")
    )
    assert local == ray
