"""The package's import graph: no circles, and the lower layers never import the higher ones.

Read from the source with ``ast``, counting every import, also those inside functions (a
function-level import hides a circle from Python, not from a reader).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "fkp"

LAYERS: tuple[tuple[str, ...], ...] = (
    # 0: facts, maths and plumbing that know nothing of models or detectors
    (
        "fkp.utils",
        "fkp.landmarks",
        "fkp.boxes",
        "fkp.calibration",
        "fkp.model_config",
        "fkp.losses",
        "fkp.smoothing",
        "fkp.images",
        "fkp.keypoints_csv",
        "fkp.outputs",
        "fkp.geometry",
        "fkp.metrics",
        "fkp.pose",
        "fkp.face",
        "fkp.predictor",
        "fkp.fetch",
        "fkp.inputs",
    ),
    # 1: data sets, model files and networks, drawing
    (
        "fkp.data",
        "fkp.conventions",
        "fkp.samples",
        "fkp.model_file",
        "fkp.art",
        "fkp.align",
        "fkp.data_check",
        "fkp.records",
        "fkp.download",
        "fkp.w300",
        "fkp.viz",
        "fkp.filters",
        "fkp.train_config",
        "fkp.device",
        "fkp.models",
        "fkp.export",
        "fkp.quantize",
    ),
    # 2: the parts a pipeline is made of: detectors, the keypoint model, weights and checkpoints
    (
        "fkp.detectors",
        "fkp.detectors.base",
        "fkp.detectors.haar",
        "fkp.detectors.yunet",
        "fkp.detectors.registry",
        "fkp.predict",
        "fkp.weights_io",
        "fkp.resume",
        "fkp.bulk",
    ),
    # 3: pipelines: detection, video, evaluation, training
    (
        "fkp.detect",
        "fkp.transforms",
        "fkp.evaluate",
        "fkp.annotate",
        "fkp.tracking",
        "fkp.training_data",
        "fkp.train",
        "fkp.video",
        "fkp.checks",
        "fkp.distributed",
    ),
    # 4: the command line
    ("fkp.cli", "fkp.__main__"),
)
"""Every module of the package by layer, lowest first (``fkp.cli`` stands for its sub-modules too): a
module may import only modules of its own layer or below, and the graph has no circle."""


def layer_of(module: str) -> int:
    for level, layer in enumerate(LAYERS):
        if module in layer or any(module.startswith(name + ".") for name in layer if name == "fkp.cli"):
            return level
    raise KeyError(module)


TOP = ("fkp.cli",)
"""Only the command line (and the package's lazy ``__init__``) may import these."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The fkp modules that ``path`` imports anywhere in its code (resolved to modules, not names)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != "fkp":
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {name: imports_of(path, modules) - {name} for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of the graph as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_a_circle_and_accepts_a_tree() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_package_has_no_import_circle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_every_module_has_a_layer() -> None:
    unplaced = []
    for module in import_graph():
        try:
            layer_of(module)
        except KeyError:
            unplaced.append(module)
    assert module_name(PACKAGE / "__init__.py") == "fkp"
    assert sorted(unplaced) == ["fkp"], f"put these modules in a layer of LAYERS: {sorted(unplaced)}"


def test_no_module_imports_a_higher_layer() -> None:
    for module, imported in import_graph().items():
        if module == "fkp":  # the lazy public API names modules of every layer
            continue
        above = sorted(name for name in imported if layer_of(name) > layer_of(module))
        assert not above, f"{module} (layer {layer_of(module)}) imports higher modules: {above}"


def test_only_the_command_line_imports_the_command_line() -> None:
    for module, imported in import_graph().items():
        if module.startswith(TOP) or module == "fkp.__main__":
            continue
        assert not {name for name in imported if name.startswith(TOP)}, f"{module} imports the command line"
