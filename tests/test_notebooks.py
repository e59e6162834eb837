"""The committed notebooks are a promise to readers: one clean top-to-bottom run, figures included."""

import json
from pathlib import Path

import pytest

from fkp.utils import SMOKE_ENV, smoke_mode

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(ROOT.glob("[0-9]_*.ipynb"))


def test_the_four_course_notebooks_are_there():
    assert [path.name for path in NOTEBOOKS] == [
        "1_Load_and_Visualize_Data.ipynb",
        "2_Define_Train_Network.ipynb",
        "3_Facial_Keypoint_Detection.ipynb",
        "4_Fun_with_Keypoints.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_after_one_clean_run_in_order(path):
    notebook = json.loads(path.read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code" and "".join(cell["source"]).strip()]
    assert [cell["execution_count"] for cell in code] == list(range(1, len(code) + 1))
    errors = [o for cell in code for o in cell["outputs"] if o["output_type"] == "error"]
    assert errors == []
    images = [
        o
        for cell in code
        for o in cell["outputs"]
        if "image/png" in o.get("data", {}) or "image/jpeg" in o.get("data", {})
    ]
    assert len(images) >= 3  # the figures are part of what a reader sees


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_skeleton_follows_the_style(path):
    notebook = json.loads(path.read_text())
    markdown = "\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown")
    titles = [line for line in markdown.splitlines() if line.startswith("# ")]
    assert len(titles) == 1
    assert "## Summary" in markdown and "## Exercises" in markdown
    setup = "".join(next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")["source"])
    assert "set_seed(" in setup and "SMOKE" in setup


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, False),
        ({"CI": "false"}, False),
        ({"CI": "0"}, False),
        ({"CI": ""}, False),
        ({"CI": "true"}, True),
        ({"CI": "TRUE"}, True),
        ({"CI": "1"}, True),
        ({"FKP_SMOKE": "1"}, True),
        ({"FKP_SMOKE": "True"}, True),
        ({"FKP_SMOKE": "0"}, False),
        ({"FKP_SMOKE": "0", "CI": "true"}, True),
    ],
)
def test_smoke_mode_is_an_explicit_switch(monkeypatch, environment, expected):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv(SMOKE_ENV, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert smoke_mode() is expected


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_take_smoke_mode_from_fkp(path):
    setup = "".join(next(c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")["source"])
    assert "smoke_mode()" in setup and '"CI" in os.environ' not in setup


def test_a_kernel_started_under_pytest_runs_in_smoke_mode(monkeypatch):
    """The root conftest sets FKP_SMOKE=1 for the session, and a kernel inherits it whatever CI says."""
    manager = pytest.importorskip("jupyter_client.manager")
    monkeypatch.setenv("CI", "false")
    kernel, client = manager.start_new_kernel(kernel_name="python3", cwd=str(ROOT))
    try:
        seen = []
        client.execute_interactive(
            "from fkp.utils import smoke_mode; print(smoke_mode())",
            timeout=60,
            output_hook=lambda message: seen.append(message["content"].get("text", "")),
        )
        assert "".join(seen).strip() == "True"
    finally:
        client.stop_channels()
        kernel.shutdown_kernel(now=True)


def _cells(path):
    return json.loads(path.read_text())["cells"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_nbval_markers_are_cell_tags_not_comments_in_the_code(path):
    """A learner reads the code: nbval's markers live in the cell metadata (``nbval-ignore-output``)."""
    code = ["".join(c["source"]) for c in _cells(path) if c["cell_type"] == "code"]
    assert not [source for source in code if "NBVAL_" in source]
    tags = {tag for c in _cells(path) for tag in c["metadata"].get("tags", [])}
    assert tags <= {"nbval-ignore-output", "solution"}


@pytest.mark.parametrize(
    ("path", "least"),
    [(NOTEBOOKS[1], 3), (NOTEBOOKS[2], 1), (NOTEBOOKS[3], 1)],
    ids=lambda value: value.name if isinstance(value, Path) else str(value),
)
def test_your_turn_cells_hold_a_collapsed_worked_answer_and_a_check_follows(path, least):
    """Each "Your turn": a markdown cell that says so, the worked answer collapsed and tagged
    ``solution`` (nbval runs it, so CI guards every output), then a cell that calls ``fkp.checks``."""
    cells = _cells(path)
    answers = [i for i, c in enumerate(cells) if "solution" in c["metadata"].get("tags", [])]
    assert len(answers) >= least
    for i in answers:
        assert cells[i]["cell_type"] == "code"
        assert cells[i]["metadata"]["jupyter"]["source_hidden"] is True
        above = next(c for c in reversed(cells[:i]) if c["cell_type"] == "markdown")
        assert "Your turn" in "".join(above["source"]) and "worked answer" in "".join(above["source"])
        after = [c for c in cells[i + 1 : i + 4] if c["cell_type"] == "code"]
        assert "checks.check_" in "".join(after[0]["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_exercises_come_with_worked_answers(path):
    markdown = "\n".join("".join(c["source"]) for c in _cells(path) if c["cell_type"] == "markdown")
    exercises = markdown.split("## Exercises", 1)[1]
    assert "<details>" in exercises and "Worked answers" in exercises


def test_notebook_2_measures_the_course_recipe_with_one_plain_pass():
    code = "\n".join("".join(c["source"]) for c in _cells(NOTEBOOKS[1]) if c["cell_type"] == "code")
    assert "second_pass=SecondPass.off()" in code
    assert '"course recipe"' in code and '"+ fkp.train"' in code
    assert "torch.set_num_threads(1)" in code
