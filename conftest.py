"""The notebooks under pytest (nbval, ``pytest --nbval``, and tests/test_browser.py).

This file sits beside the notebooks, so pytest loads it for every run that touches them, also
``pytest --nbval 3_Facial_Keypoint_Detection.ipynb`` on its own (a conftest in tests/ would only
be loaded for tests/). It does two things:

* every notebook kernel the session starts runs in smoke mode: ``FKP_SMOKE=1`` is set before
  nbval starts its kernels, which inherit the environment, whatever ``CI`` says; ``FKP_OFFLINE=1``
  too (unless set), so that neither a test nor a kernel downloads YuNet on first use;
* a notebook whose data is not on this machine is skipped with the unit tests' one-line hint;
  in CI (``CI`` is "1" or "true") every data set is present, so there it fails instead.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

NOTEBOOK_NEEDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # (what a notebook needs, strings in its code cells that say it needs it)
    ("udacity", ("resolve_data_dir(",)),
    ("300w", ('"300w"', "resolve_300w_dir(")),
    ("yunet", ("YuNetFaceDetector(", "detect_keypoints(")),
)
"""What a notebook needs, read from its code: the Udacity set, 300-W, YuNet's model file (YuNet
because the notebooks' committed outputs are YuNet's faces; without it ``auto`` falls back to Haar)."""


def in_ci() -> bool:
    """True on CI (:func:`fkp.utils.ci_mode`): there every data set is present, so nothing may skip."""
    from fkp.utils import ci_mode

    return ci_mode()


def _missing(need: str) -> str | None:
    """The skip reason (the unit tests' one-line hint) when ``need`` is not on this machine, else None."""
    from fkp.detectors.yunet import GET_YUNET_HINT, find_yunet
    from fkp.utils import GET_300W_HINT, GET_DATA_HINT, resolve_300w_dir, resolve_data_dir

    if need == "udacity":
        found = (resolve_data_dir() / "training_frames_keypoints.csv").is_file()
        return None if found else f"needs the data set: {GET_DATA_HINT}"
    if need == "300w":
        found = (resolve_300w_dir() / "test_frames_keypoints.csv").is_file()
        return None if found else f"needs 300-W: {GET_300W_HINT}"
    if need == "yunet":
        return None if find_yunet().is_file() else f"needs the YuNet face detector: {GET_YUNET_HINT}"
    raise ValueError(f"unknown need {need!r}")


@functools.cache
def notebook_missing(path: Path) -> str | None:
    """Why notebook ``path`` cannot run here (the first missing need's one-line hint), or None."""
    import nbformat

    notebook = nbformat.read(str(path), as_version=4)
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    for need, markers in NOTEBOOK_NEEDS:
        reason = _missing(need) if any(marker in code for marker in markers) else None
        if reason is not None:
            return reason
    return None


_KERNEL_TMP: tempfile.TemporaryDirectory[str] | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Smoke mode for every notebook kernel this session starts: nbval's kernels and the browser
    test's JupyterLab inherit this environment. Their temporary folders go into one folder of the
    session's, removed when it ends (nbval kills its kernels, which then cannot clean up)."""
    global _KERNEL_TMP
    from fkp.utils import SMOKE_ENV

    os.environ[SMOKE_ENV] = "1"
    os.environ.setdefault("FKP_OFFLINE", "1")  # no test or kernel downloads YuNet on first use
    tempfile.gettempdir()  # this process keeps the usual folder (tmp_path, the browser test's screenshots)
    _KERNEL_TMP = tempfile.TemporaryDirectory(prefix="fkp_pytest_kernels_")
    os.environ["TMPDIR"] = _KERNEL_TMP.name  # for the kernels, started later
    config.addinivalue_line("markers", "fkp_missing_in_ci(reason): a notebook whose data CI lacks; fails")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the cells of a notebook whose data is missing, with the unit tests' one-line hint;
    in CI mark them to fail instead (see :func:`pytest_runtest_setup`)."""
    for item in items:
        if item.path.suffix != ".ipynb":
            continue
        reason = notebook_missing(item.path)
        if reason is None:
            continue
        if in_ci():
            item.add_marker(pytest.mark.fkp_missing_in_ci(reason))
        else:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """In CI a notebook whose data is missing fails, in one line, before its kernel starts."""
    marker = item.get_closest_marker("fkp_missing_in_ci")
    if marker is not None:
        pytest.fail(f"{marker.args[0]} (CI must have it)", pytrace=False)


@pytest.fixture(scope="session")
def missing_for_notebook() -> Callable[[Path], str | None]:
    """:func:`notebook_missing`, for tests that run notebooks themselves (the browser test)."""
    return notebook_missing


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the kernels' temporary folder (see :func:`pytest_configure`)."""
    if _KERNEL_TMP is not None:
        _KERNEL_TMP.cleanup()
