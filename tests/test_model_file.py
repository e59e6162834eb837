"""The model file format (fkp.model_file) and the layering of the model modules around it."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import fkp
from fkp.model_file import (
    FORMAT_VERSION,
    WEIGHTS_SHA256_KEY,
    WeightsError,
    file_metadata,
    onnx_metadata,
    parse_metadata,
    read_safetensors_metadata,
    sha256_of,
)
from fkp.models import KeypointNetConfig
from fkp.predict import default_weights_path

PACKAGE = Path(fkp.__file__).parent
MODEL_MODULES = ("predict", "export", "weights_io", "model_file", "model_config", "models", "quantize")


def _imports(module: str) -> set[str]:
    """Every ``fkp.*`` module that ``fkp/<module>.py`` imports, at module level or inside functions."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name.removeprefix("fkp.") for name in names if name.startswith("fkp.")}


def test_the_model_modules_import_each_other_without_a_circle():
    graph = {module: _imports(module) & set(MODEL_MODULES) for module in MODEL_MODULES}
    assert "predict" not in graph["export"] | graph["weights_io"] | graph["model_file"]
    assert graph["model_file"] <= {"model_config"} and graph["model_config"] == set()

    def reaches(start: str, target: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt})) for nxt in graph[start])

    assert [module for module in MODEL_MODULES if reaches(module, module)] == []


def test_the_format_reads_without_torch_or_onnxruntime():
    """A core install reads a model file's config: fkp.model_file and fkp.model_config import neither."""
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['onnxruntime'] = None\n"
        "from fkp.model_file import parse_metadata, read_safetensors_metadata\n"
        "from fkp.predict import default_weights_path\n"
        "path = default_weights_path()\n"
        "print(parse_metadata(path, read_safetensors_metadata(path)).config.architecture)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "keypointnet"


def test_the_shipped_files_still_parse_and_pair():
    weights = default_weights_path()
    facts = parse_metadata(weights, read_safetensors_metadata(weights))
    assert facts.config.heads == ("300w", "udacity") and 1.0 <= facts.box_scale <= 4.0
    onnx = pytest.importorskip("onnx")
    graph = onnx.load(str(weights.with_suffix(".onnx")), load_external_data=False)
    props = {prop.key: prop.value for prop in graph.metadata_props}
    assert props[WEIGHTS_SHA256_KEY] == sha256_of(weights)
    assert parse_metadata(weights.with_suffix(".onnx"), props) == facts


def test_metadata_round_trips_and_onnx_metadata_adds_the_weights_sha(tmp_path):
    config = KeypointNetConfig(input_size=32)
    metadata = file_metadata(config, 1.3, {"labels": "300w"})
    assert metadata["format"] == "fkp" and metadata["format_version"] == FORMAT_VERSION
    facts = parse_metadata(tmp_path / "m.safetensors", metadata)
    assert (facts.config, facts.box_scale, facts.info) == (config, 1.3, {"labels": "300w"})
    weights = tmp_path / "m.safetensors"
    weights.write_bytes(b"tensors")
    with_sha = onnx_metadata(config, 1.3, {}, weights)
    assert with_sha[WEIGHTS_SHA256_KEY] == sha256_of(weights) and WEIGHTS_SHA256_KEY not in onnx_metadata(config, 1.3)
    assert json.loads(with_sha["model_config"])["architecture"] == "keypointnet"


def test_sha256_of_matches_hashlib_on_a_file_larger_than_its_chunk(tmp_path):
    import hashlib

    path = tmp_path / "big.bin"
    data = bytes(range(256)) * 10_000  # 2.5 MB: several chunks
    path.write_bytes(data)
    assert sha256_of(path) == hashlib.sha256(data).hexdigest()


def test_a_file_that_is_not_safetensors_is_one_line(tmp_path):
    path = tmp_path / "x.safetensors"
    path.write_bytes(b"\xff" * 20)
    with pytest.raises(WeightsError, match="not a safetensors weights file") as error:
        read_safetensors_metadata(path)
    assert "\n" not in str(error.value)
