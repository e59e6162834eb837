"""The inference path is light: it runs on NumPy, OpenCV, onnxruntime and Pillow, never PyTorch."""

import subprocess
import sys
import textwrap

# Each step of the inference path a tool user takes, in a fresh interpreter (the test process
# itself has torch loaded by other tests). It prints the heavy modules that got imported.
INFERENCE_SCRIPT = textwrap.dedent(
    """
    import sys
    import cv2
    import numpy as np

    import fkp
    from fkp import filters, pose, samples
    from fkp.cli import main

    image = samples.astronaut()
    model = fkp.load_model()
    faces = fkp.detect_keypoints(image)
    assert len(faces) == 1 and model.backend == "onnx", (faces, model)
    points = faces[0].keypoints
    filtered = filters.apply_filter(image, [points], "sunglasses")
    assert filtered.shape == image.shape
    head = pose.estimate_head_pose(points, image.shape[:2])
    assert abs(head.yaw) < 45, head

    out = sys.argv[1]
    cv2.imwrite(f"{out}/photo.png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer = cv2.VideoWriter(f"{out}/clip.avi", cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (512, 512))
    for _ in range(3):
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()
    assert main(["detect", f"{out}/photo.png", "-o", f"{out}/out.png", "--json", f"{out}/faces.json"]) == 0
    assert main(["detect", "-o", f"{out}/demo.png"]) == 0
    assert main(["video", f"{out}/clip.avi", "-o", f"{out}/clip_fkp.mp4", "--max-frames", "3"]) == 0
    assert main(["filter", f"{out}/photo.png", "--filter", "hat", "-o", f"{out}/hat.png"]) == 0
    # (scikit-image is allowed: the sample photo of the demo comes from it.)
    heavy = sorted({name.split(".")[0] for name in sys.modules} & {"torch", "safetensors", "onnx", "matplotlib", "pandas"})
    print("HEAVY", heavy)
    """
)


def test_inference_imports_no_torch(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", INFERENCE_SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "HEAVY []" in result.stdout, result.stdout
    assert (tmp_path / "out.png").is_file() and (tmp_path / "hat.png").is_file() and (tmp_path / "clip_fkp.mp4").is_file()


def test_the_fkp_command_builds_its_parser_without_torch():
    script = "import sys; from fkp.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr[-2000:]


def test_fkp_train_help_still_lists_every_train_config_option(capsys):
    import dataclasses

    import pytest

    from fkp.cli import main
    from fkp.train_config import TrainConfig

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    flags = {"--" + spec.name.replace("_", "-") for spec in dataclasses.fields(TrainConfig)} - {"--data"}
    assert all(flag in out for flag in flags), sorted(flag for flag in flags if flag not in out)
