"""The notebooks as a learner meets them: JupyterLab in a real browser (headless Chromium).

For each notebook: open it in JupyterLab, Run > Run All Cells, wait until the kernel is idle, save,
and check that every code cell ran with no error output; then check that every ipywidgets control
renders and responds: a slider moved, a checkbox ticked or a dropdown changed must change the
picture its ``interactive`` draws. The server runs with ``FKP_SMOKE=1`` in a temporary folder laid
out like the clone: copies of the notebooks (the committed ones are never touched) and links to the
rest. On a failure a screenshot of the page
is saved and its path printed.

Needs Debian's ``chromium`` (``/usr/bin/chromium``; ``apt-get install chromium``) and Playwright
from PyPI (``pip install playwright``), which drives that Chromium (it never downloads a browser
here). Without them this file is skipped with one line, except in CI, which installs both
(``.ci/run``). ``pytest -m browser`` runs it alone, ``pytest -m "not browser"`` leaves it out.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fkp.utils import SMOKE_ENV, resolve_300w_dir, resolve_data_dir

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(ROOT.glob("[0-9]_*.ipynb"))
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RUN_TIMEOUT_S = 300  # one notebook's Run All in smoke mode (a few tens of seconds on 2 cores)
WIDGET_TIMEOUT_S = 30  # one widget's redraw
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true")


def _why_not_here() -> str | None:
    if not CHROMIUM.is_file():
        return f"needs Chromium at {CHROMIUM} (apt-get install chromium) and playwright (pip install playwright)"
    if importlib.util.find_spec("playwright") is None:
        return "needs playwright (pip install playwright) to drive Chromium"
    return None


_MISSING = _why_not_here()
if _MISSING is not None and not IN_CI:  # CI has both: there the fixtures fail instead
    pytest.skip(_MISSING, allow_module_level=True)


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab: its base URL, its token and the folder it serves (laid out like the clone)."""

    url: str
    token: str
    folder: Path

    def api(self, path: str, method: str = "GET") -> Any:
        """Call the server's REST API (``/api/PATH``); returns the decoded JSON answer (None if empty)."""
        headers = {"Authorization": f"token {self.token}"}
        request = urllib.request.Request(f"{self.url}/api/{path}", headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _write_settings(folder: Path) -> None:
    """JupyterLab user settings: every cell in the page (no windowing) and no news pop-ups."""
    settings = {
        "notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    }
    for name, values in settings.items():
        path = folder / "@jupyterlab" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab on a free localhost port, with a token, serving copies of the notebooks."""
    if _MISSING is not None:
        pytest.fail(f"{_MISSING} (CI must have it)")
    folder = tmp_path_factory.mktemp("lab")
    for entry in ROOT.iterdir():  # the clone's layout: copies of the notebooks, links to the rest (docs/, data/)
        if entry in NOTEBOOKS:
            shutil.copy(entry, folder / entry.name)
        elif not entry.name.startswith("."):
            (folder / entry.name).symlink_to(entry)
    home = tmp_path_factory.mktemp("lab-home")
    _write_settings(home / "settings")
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        SMOKE_ENV: "1",
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        # the notebooks run from the copy's folder: point them at this machine's data folders
        "FKP_DATA_DIR": str(resolve_data_dir().resolve()),
        "FKP_300W_DIR": str(resolve_300w_dir().resolve()),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    log_path = home / "jupyterlab.log"
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={folder}",
        "--ServerApp.allow_root=True",  # CI runs as root
    ]
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    running = Lab(f"http://127.0.0.1:{port}", token, folder)
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab stopped (exit {server.returncode}):\n{log_path.read_text()[-2000:]}")
            try:
                running.api("status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start in 60 s:\n{log_path.read_text()[-2000:]}")
                time.sleep(0.5)
        yield running
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (the system one), driven by Playwright."""
    if _MISSING is not None:
        pytest.fail(f"{_MISSING} (CI must have it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where a failing notebook's screenshot goes."""
    return tmp_path_factory.mktemp("browser-screenshots")


def _session(lab: Lab, name: str) -> dict[str, Any] | None:
    return next((s for s in lab.api("sessions") if s["path"] == name), None)


def _kernel_state(lab: Lab, name: str) -> str:
    """The execution state of notebook ``name``'s kernel ("idle", "busy", ...; "none" before it exists)."""
    session = _session(lab, name)
    return "none" if session is None else str(lab.api(f"kernels/{session['kernel']['id']}")["execution_state"])


def _shut_down(lab: Lab, name: str) -> None:
    """Stop notebook ``name``'s kernel, so that it frees the CPU for the next notebook."""
    session = _session(lab, name)
    if session is not None:
        lab.api(f"sessions/{session['id']}", method="DELETE")


def _wait_for(
    condition: Callable[[], bool], timeout_s: float, what: str, progress: Callable[[], str] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            where = f" ({progress()})" if progress is not None else ""
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}{where}")
        time.sleep(0.5)


def _run_all(page: Any, lab: Lab, name: str) -> dict[str, Any]:
    """Open notebook ``name``, clear its outputs, Run All Cells from the menu, wait until every code
    cell has run and the kernel is idle, save; returns the saved notebook."""
    saved = json.loads((lab.folder / name).read_text())
    expected = sum(c["cell_type"] == "code" and bool("".join(c["source"]).strip()) for c in saved["cells"])
    page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}")  # reset: no tabs from the last page
    panel = _panel(page)
    panel.locator(".jp-Cell").first.wait_for(timeout=60_000)
    _wait_for(lambda: _kernel_state(lab, name) == "idle", 60, "the kernel to start")
    _menu(page, "Edit", "Clear Outputs of All Cells")  # so that every number seen below is from this run
    _wait_for(lambda: _numbered(panel) == 0, 10, "the outputs to be cleared")
    _menu(page, "Run", "Run All Cells")

    def finished() -> bool:  # every cell ran, or Run All stopped at an error (reported from the saved file)
        prompts = panel.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
        queued = any("*" in p for p in prompts)
        return _numbered(panel) > 0 and not queued and _kernel_state(lab, name) == "idle"

    _wait_for(
        finished,
        RUN_TIMEOUT_S,
        f"Run All of {name}",
        lambda: f"{_numbered(panel)} of {expected} code cells ran, kernel {_kernel_state(lab, name)}",
    )
    panel.locator(".jp-Notebook").focus()
    page.keyboard.press("Control+s")
    _wait_for(lambda: page.locator(".lm-TabBar-tab.jp-mod-dirty").count() == 0, 30, "the notebook to be saved")
    return json.loads((lab.folder / name).read_text())


def _menu(page: Any, menu: str, item: str) -> None:
    page.get_by_role("menuitem", name=menu, exact=True).click()
    page.get_by_role("menuitem", name=item, exact=True).click()


def _numbered(panel: Any) -> int:
    """How many code cells show an execution number ("[12]:"; not "[ ]:" or "[*]:")."""
    prompts = panel.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
    return sum(p.strip().strip("[]:").isdigit() for p in prompts)


def _panel(page: Any) -> Any:
    """The notebook on screen."""
    return page.locator(".jp-NotebookPanel:visible").first


def _check_widgets(page: Any, lab: Lab, name: str, expected: int) -> list[str]:
    """Every widget view renders, and each of its controls changes the output it draws; returns what was moved."""
    views = _panel(page).locator(".jp-OutputArea-output:has(> .jupyter-widgets)")  # a widget view drawn in a cell
    broken = _panel(page).get_by_text("Error displaying widget")
    assert broken.count() == 0, f"a widget did not render: {broken.first.inner_text()[:200]}"
    assert views.count() >= expected, f"{expected} widgets are cell results, {views.count()} rendered"
    moved = []
    for v in range(views.count()):
        view = views.nth(v)
        assert view.locator(".jupyter-widgets").count() > 0, f"widget {v} did not render: {view.inner_text()[:200]}"
        output = view.locator(".widget-output").first
        controls = [
            *(("slider", c) for c in view.locator(".widget-slider .noUi-handle").all()),
            *(("checkbox", c) for c in view.locator(".widget-checkbox input[type=checkbox]").all()),
            *(("dropdown", c) for c in view.locator(".widget-dropdown select").all()),
        ]
        assert controls, f"widget {v} has no control"
        for kind, control in controls:
            before = output.inner_html()
            if kind == "slider":
                control.focus()
                at_min = float(control.get_attribute("aria-valuenow")) <= float(control.get_attribute("aria-valuemin"))
                control.press("ArrowRight" if at_min else "ArrowLeft")
            elif kind == "checkbox":
                control.click()
            else:
                options = control.locator("option").count()
                assert options > 1, f"widget {v}'s dropdown has one option"
                control.select_option(index=(control.evaluate("select => select.selectedIndex") + 1) % options)

            def redrawn(output: Any = output, before: str = before) -> bool:
                html = output.inner_html()
                return html != before and "<img" in html

            _wait_for(redrawn, WIDGET_TIMEOUT_S, f"widget {v}'s picture to change after moving its {kind}")
            _wait_for(lambda: _kernel_state(lab, name) == "idle", WIDGET_TIMEOUT_S, "the kernel after a redraw")
            moved.append(kind)
    return moved


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_jupyterlab_and_its_widgets_respond(
    path: Path,
    request: pytest.FixtureRequest,
    screenshots: Path,
    missing_for_notebook: Callable[[Path], str | None],
) -> None:
    reason = missing_for_notebook(path)
    if reason is not None:
        if IN_CI:
            pytest.fail(f"{reason} (CI must have it)")
        pytest.skip(reason)
    lab: Lab = request.getfixturevalue("lab")  # started only for a notebook that can run here
    browser = request.getfixturevalue("browser")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        notebook = _run_all(page, lab, path.name)
        code = [c for c in notebook["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
        errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
        assert not errors, "error output: " + "; ".join(f"{e['ename']}: {e['evalue']}" for e in errors)
        not_run = [i for i, c in enumerate(code) if not c["execution_count"]]
        assert not_run == [], f"code cells {not_run} did not run"
        widget_outputs = sum(  # an interactive as a cell's result (closed progress bars are display_data)
            o["output_type"] == "execute_result" and "application/vnd.jupyter.widget-view+json" in o["data"]
            for c in code
            for o in c["outputs"]
        )
        moved = _check_widgets(page, lab, path.name, widget_outputs)
        print(f"{path.name}: widget controls moved: {', '.join(moved) or 'none'}")
    except BaseException:
        shot = screenshots / f"{path.stem}.png"
        try:
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of {path.name}: {shot}")
        except Exception as error:  # a dead page: the original failure matters more
            print(f"no screenshot of {path.name}: {error}")
        raise
    finally:
        page.close()
        _shut_down(lab, path.name)


WRONG_CROP = "normalised = cv2.resize(photo, (model.input_size, model.input_size))  # no square, no grey\n"
"""A wrong answer to notebook 3's "Your turn" cell (the crop steps): a colour picture of the whole photo."""


def test_a_wrong_answer_in_a_your_turn_cell_gets_the_checks_message(
    request: pytest.FixtureRequest,
    screenshots: Path,
    missing_for_notebook: Callable[[Path], str | None],
) -> None:
    """A learner clears the worked answer of a "Your turn" cell, writes a wrong one and runs it: the
    check cell below answers in plain words (``fkp.checks``), in the page."""
    path = ROOT / "3_Facial_Keypoint_Detection.ipynb"
    reason = missing_for_notebook(path)
    if reason is not None:
        if IN_CI:
            pytest.fail(f"{reason} (CI must have it)")
        pytest.skip(reason)
    lab: Lab = request.getfixturevalue("lab")
    browser = request.getfixturevalue("browser")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        notebook = _run_all(page, lab, path.name)  # the worked answers in place: photo, boxes, model exist
        index = next(i for i, c in enumerate(notebook["cells"]) if "solution" in c["metadata"].get("tags", []))
        check_index = next(
            i
            for i, c in enumerate(notebook["cells"])
            if i > index and c["cell_type"] == "code" and "checks.check_" in "".join(c["source"])
        )
        cells = _panel(page).locator(".jp-Cell")
        answer, check = cells.nth(index), cells.nth(check_index)
        assert "OK" in check.locator(".jp-OutputArea").inner_text()  # the worked answer passes
        answer.locator(".jp-InputCollapser").click()  # the worked answer is collapsed: open it
        editor = answer.locator(".cm-content")
        editor.wait_for(timeout=10_000)
        editor.click()
        page.keyboard.press("Control+a")
        page.keyboard.insert_text(WRONG_CROP)  # replaces the worked answer
        page.keyboard.press("Shift+Enter")
        _wait_for(lambda: _kernel_state(lab, path.name) == "idle", 60, "the wrong answer to run")
        check.locator(".jp-InputArea").click()
        page.keyboard.press("Shift+Enter")

        def answered() -> bool:
            return "still colour" in check.locator(".jp-OutputArea").inner_text()

        _wait_for(answered, 60, "the check's message", lambda: check.locator(".jp-OutputArea").inner_text()[-300:])
        assert "CheckFailed" in check.locator(".jp-OutputArea").inner_text()
    except BaseException:
        shot = screenshots / "your_turn.png"
        try:
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
        except Exception as error:
            print(f"no screenshot: {error}")
        raise
    finally:
        page.close()
        _shut_down(lab, path.name)
