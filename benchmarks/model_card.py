"""The model card of the shipped model, rendered from its stored provenance and a benchmark's figures.

Used by ``benchmarks/compare_dlib.py --card fkp/weights/MODEL_CARD.md``; not meant to be run alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fkp.predict import default_weights_path

CARD = """# Model card: fkp default keypoint model

*Written by `python benchmarks/compare_dlib.py --card fkp/weights/MODEL_CARD.md` from the figures
it measured and the provenance stored in `default.safetensors`; do not edit by hand.*

## What it is
- **Task**: the 68 facial keypoints (iBUG 300-W layout and labelling convention) of one face, given
  the photo and an axis-aligned face box: the box of the points, or a Haar or YuNet detector's box.
- **Architecture**: `{architecture}`, a residual encoder to stride 16, a pyramid decoder back to
  stride 4 and one heatmap per point and labelling-convention head, read out with a soft-argmax;
  {params} parameters, {size_mb:.2f} MB as float16 safetensors. Config: `{model_config}`.
- **Input**: a {input_size} x {input_size} grayscale crop around the box (side = longer box side x
  {box_scale}), standardised per crop.
- **Roll normalisation**: when the first pass finds the eye line tilted by more than {roll_threshold:g} degrees,
  a second pass runs on a crop turned upright around the points found (`fkp.predict`), so the
  model does not care how the head is rolled; a detector that knows the roll can pass it. Up to
  {average_tilt:g} degrees the two passes' points are averaged, beyond it the second replaces the first
  (chosen on the validation faces: `benchmarks/second_pass.py`).
- **Inference**: `fkp.load_model()` runs `default.onnx` with onnxruntime: the same network with its
  convolutions and the activations between them in int8 (`fkp.quantize`, calibrated on 512
  training crops; the heatmap head and the soft-argmax stay float32), more than twice as fast on
  one CPU thread as float32 and within a tenth of a crop pixel of it on average.
  `fkp.load_model(backend="torch")` runs the float32 network from `default.safetensors` (safetensors, no pickled code).

## Training data and licences
The shipped weights are learnt from two research data sets, as dlib's own 68-point model is:

- **The Udacity facial keypoints set** (3462 training images): frames of the YouTube Faces data
  set (Wolf, Hassner and Maoz, CVPR 2011), whose terms apply to the images; Udacity's packaging is
  MIT-licensed. Its labels follow a slightly different convention from 300-W's (the nose, the
  left brow and the jaw sit a few percent of the eye distance away on average, as
  `benchmarks/label_conventions.py` measures from two single-set models on each other's training
  split, and the difference changes from face to face). The network therefore has one heatmap
  head per convention (`heads` in the config above): everything before the last 1 x 1
  convolution is shared, the Udacity labels train the `udacity` head as they are, and 300-W's
  train the default `300w` head. The YouTube figures below use the `udacity` head
  (`predict(..., labels="udacity")`); everything else uses the default.
- **300-W** (1964 training faces: LFPW and HELEN training sets and AFW; Sagonas et al., ICCV-W
  2013 and IMAVIS 2016): **research use only**; the annotations are provided "for research purposes
  ONLY (NO commercial products)" and the photographs belong to their owners.

{held_out} CSV checksums (sha256) of the data used:
```
{data_sha}
```
- **Command**: `{command}` (with `FKP_DATA_DIR` and `FKP_300W_DIR` pointing at the data).
- **Time**: {minutes} min wall time for {epochs} epochs on {machine}; Python {python}, torch {torch}.{note}
  {selection}
- **Full training config**:
```json
{train_config}
```

## Figures
NME normalised by the outer-eye-corner distance (points 36 and 45), failure = NME above 8%, AUC of
the CED up to 8%; one thread, measured on {bench_machine}:

```
{figures}
```

## Caveats
- **The YouTube test split shares all its people with the training split** (other frames of the
  same videos), so its figures measure new frames of known people; 300-W common has photos and
  people never seen in training, and is the better guide to a stranger's photo.
- 300-W's "challenging" iBUG subset is not in the test set used here, so strong profiles, heavy
  occlusion and extreme expressions are measured only through what 300-W common holds.
- dlib's predictor was trained on 300-W's training photos too, so both models are on home ground
  on 300-W common; on the YouTube set dlib's labelling convention differs from the set's, which
  the "offset learned on training" row corrects.
"""


def _held_out(val_fraction: float) -> str:
    """The sentence on what training held out, for a run's ``val_fraction``."""
    if val_fraction <= 0:
        return "Every training face of both sets trains the model; none is held out."
    return (
        f"The people of a {val_fraction:.0%} person-disjoint (for 300-W, photo-disjoint) validation part of "
        "each set are held out for model selection."
    )


def _selection(info: dict[str, Any]) -> str:
    """The sentence on which epoch's weights ship: the best validated one, or the last one."""
    if "val_nme" not in info:
        return f"No validation part: the weights are those of the last epoch ({info.get('epoch', '?')})."
    return (
        "Best validation NME (people and photos never seen in training; each set scored in its own labelling "
        f"convention) {info['val_nme']:.2%} at epoch {info.get('epoch', '?')}."
    )


def write_card(path: str | Path, model: Any, figures: str) -> None:
    """Render the card for ``model`` (the shipped model) with a benchmark's ``figures`` text."""
    import platform

    info = model.metadata
    weights = default_weights_path()
    config = {key: value for key, value in info.get("train_config", {}).items() if key != "out_dir"}
    text = CARD.format(
        architecture=model.config.architecture,
        model_config=json.dumps({k: v for k, v in vars(model.config).items() if k != "architecture"}, default=list),
        size_mb=weights.stat().st_size / 1e6,
        params=f"{info['parameters']:,}" if "parameters" in info else "?",
        input_size=model.input_size,
        box_scale=model.box_scale,
        roll_threshold=model.second_pass.roll_threshold,
        average_tilt=model.second_pass.average_tilt,
        command=info.get("train_command", "?"),
        train_config=json.dumps(config, indent=2, sort_keys=True),
        minutes=info.get("train_minutes", "?"),
        epochs=info.get("epochs_run", "?"),
        held_out=_held_out(config.get("val_fraction", 0.1)),
        selection=_selection(info),
        machine=info.get("machine", "?"),
        note=(
            f"\n  {info['train_note']} (The note's figures were measured when this model was released; the"
            "\n  benchmark below is today's.)"
            if info.get("train_note")
            else ""
        ),
        torch=info.get("torch", "?"),
        python=info.get("python", "?"),
        data_sha=json.dumps(info.get("data_sha256", {}), indent=2),
        figures=figures,
        bench_machine=f"{platform.machine()}, {platform.processor() or platform.system()}",
    )
    Path(path).write_text(text)
