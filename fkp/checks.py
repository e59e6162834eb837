"""Checks for the notebooks' "Your turn" cells: each says in plain words what is wrong, or what works.

A check raises :class:`CheckFailed` (an ``AssertionError``) with one or two sentences that name
the problem and the usual fix; when the answer works it returns a short line saying what was
checked. The notebooks call them right after each "Your turn" cell:

* notebook 2: :func:`check_net` (the network's layers), :func:`check_loss_and_optimizer`,
  :func:`check_train_step` (the training loop's five lines, on 32 faces);
* notebook 3: :func:`check_face_crop` (the crop, grey, resize and standardise steps);
* notebook 4: :func:`check_overlay_placement` (an overlay's similarity transform).

Coordinates are pixels, x then y, unless a check says otherwise.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from fkp import geometry
from fkp.landmarks import NUM_KEYPOINTS

__all__ = [
    "CheckFailed",
    "check_face_crop",
    "check_loss_and_optimizer",
    "check_net",
    "check_overlay_placement",
    "check_train_step",
]


class CheckFailed(AssertionError):
    """A "Your turn" answer does not work yet; the message says why, in plain words."""


def _fail(message: str) -> None:
    raise CheckFailed(message)


def check_net(net: nn.Module, input_size: int = 96) -> str:
    """Check a keypoint network: (N, 1, S, S) crops in, (N, 68, 2) points in [-1, 1] out, trainable.

    Args:
        net: the network (an ``nn.Module``); it is not changed (a copy is run).
        input_size: S, the side of the square grey crops it takes, in pixels.

    Returns:
        One line saying what passed.

    Raises:
        CheckFailed: the output has the wrong shape or range, the forward pass fails, or a
            parameter gets no gradient.
    """
    if not isinstance(net, nn.Module):
        _fail(f"expected an nn.Module (an instance of your Net class), got {type(net).__name__}")
    trial = copy.deepcopy(net).train()
    torch.manual_seed(0)
    crops = torch.randn(4, 1, input_size, input_size)
    try:
        out = trial(crops)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        _fail(
            f"the forward pass fails on a batch of 4 crops of 1 x {input_size} x {input_size}: {first}. "
            "A shape mismatch at the first nn.Linear means its in_features is not channels x side x side "
            "of the last feature map (print net.features(crops).shape to see it)."
        )
    expected = (4, NUM_KEYPOINTS, 2)
    if tuple(out.shape) == (4, NUM_KEYPOINTS * 2):
        _fail(
            f"the output is {tuple(out.shape)}: reshape it to (N, {NUM_KEYPOINTS}, 2) in forward, e.g. .view(-1, {NUM_KEYPOINTS}, 2)"
        )
    if tuple(out.shape) != expected:
        _fail(
            f"the output is {tuple(out.shape)}, but 4 crops must give {expected}: {NUM_KEYPOINTS} points, x and y each"
        )
    if not torch.isfinite(out).all():
        _fail("the output holds NaN or infinite numbers")
    if out.abs().max() > 1:
        _fail(
            f"outputs reach {out.abs().max().item():.2f}, outside [-1, 1], the crop's normalised coordinates: "
            "end forward with torch.tanh so that every point stays inside the crop"
        )
    out.square().sum().backward()
    frozen = [
        name for name, p in trial.named_parameters() if p.requires_grad and (p.grad is None or p.grad.abs().sum() == 0)
    ]
    if frozen:
        _fail(f"no gradient reaches {', '.join(frozen[:3])}: is each layer used in forward?")
    count = sum(p.numel() for p in trial.parameters())
    return f"OK: 4 crops in, {expected} out, inside [-1, 1], gradients reach all {count:,} parameters"


def check_loss_and_optimizer(
    criterion: Callable[..., torch.Tensor], optimizer: torch.optim.Optimizer, net: nn.Module
) -> str:
    """Check a regression loss and an optimiser for ``net``.

    Args:
        criterion: a loss called as ``criterion(predicted, target)`` on two (N, 68, 2) tensors.
        optimizer: a ``torch.optim.Optimizer`` built on ``net.parameters()``.
        net: the network it trains.

    Returns:
        One line saying what passed.

    Raises:
        CheckFailed: the loss is not a non-negative number that is 0 for a perfect answer and grows
            with the error, or the optimiser does not hold all of the network's parameters, or its
            learning rate is far from the usual range.
    """
    torch.manual_seed(0)
    target = torch.rand(8, NUM_KEYPOINTS, 2) * 2 - 1
    try:
        perfect = criterion(target.clone(), target)
        small = criterion(target + 0.05, target)
        large = criterion(target + 0.5, target)
    except (RuntimeError, TypeError) as error:
        _fail(f"the loss fails on two (8, {NUM_KEYPOINTS}, 2) tensors: {str(error).splitlines()[0]}")
    if not isinstance(perfect, torch.Tensor) or perfect.numel() != 1:
        _fail("the loss must return one number (a tensor with one element), the mean over the batch")
    if perfect.abs().item() > 1e-6:
        _fail(f"the loss of a perfect prediction is {perfect.item():.3g}, not 0")
    if not 0 < small.item() < large.item():
        _fail("the loss must grow with the error: a distance such as nn.SmoothL1Loss() or nn.MSELoss() does")
    if not isinstance(optimizer, torch.optim.Optimizer):
        _fail(
            f"expected a torch.optim optimiser such as torch.optim.Adam(net.parameters(), lr=1e-3), got {type(optimizer).__name__}"
        )
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    missing = [name for name, p in net.named_parameters() if id(p) not in held]
    if missing:
        _fail(
            f"the optimiser does not hold {len(missing)} of the network's parameters ({missing[0]}, ...): "
            "build it on this net's parameters, net.parameters(), after creating the net"
        )
    lr = optimizer.param_groups[0]["lr"]
    if not 1e-5 <= lr <= 0.1:
        _fail(f"a learning rate of {lr:g} is far from the usual range: try 1e-3 for Adam, 1e-2 for SGD")
    return f"OK: {type(criterion).__name__} is 0 for a perfect answer and grows with the error; {type(optimizer).__name__} (lr {lr:g}) holds every parameter"


def check_train_step(
    train_step: Callable[[nn.Module, Mapping[str, torch.Tensor], Any, torch.optim.Optimizer], float],
    net: nn.Module,
    criterion: Callable[..., torch.Tensor],
    optimizer: torch.optim.Optimizer,
    batches: Sequence[Mapping[str, torch.Tensor]],
    epochs: int = 15,
) -> str:
    """Check one training step: forward, loss, zero the gradients, backward, optimiser step.

    ``train_step(net, batch, criterion, optimizer)`` must return the batch's loss as a float. It
    runs on copies of ``net`` and of ``optimizer`` (same class and settings), never on the
    originals: ``epochs`` passes over ``batches`` (e.g. 2 batches of 16 faces) must make the loss fall.

    Args:
        train_step: the learner's function.
        net: the network; not changed.
        criterion: the loss the step uses.
        optimizer: the optimiser the step uses; not changed.
        batches: batches of the training ``DataLoader`` (``"image"`` (B, 1, S, S), ``"keypoints"`` (B, 68, 2)).
        epochs: passes over ``batches``.

    Returns:
        One line with the first and last loss.

    Raises:
        CheckFailed: the step does not return a float, never computes gradients, accumulates them
            from step to step, never moves the weights, or the loss does not fall.
    """
    trial = copy.deepcopy(net).train()
    still = torch.optim.SGD(trial.parameters(), lr=0.0)  # no move: the gradients of two equal steps compare
    batch = batches[0]
    grads = []
    for _ in range(2):
        torch.manual_seed(0)  # the same dropout both times
        value = train_step(trial, batch, criterion, still)
        if isinstance(value, torch.Tensor):
            _fail(
                "train_step returns a tensor: return loss.item(), a plain float (a tensor keeps the whole graph alive)"
            )
        if not isinstance(value, float):
            _fail(f"train_step must return the batch's loss as a float (loss.item()), got {type(value).__name__}")
        computed = [p.grad.flatten() for p in trial.parameters() if p.grad is not None]
        if not computed:
            _fail("no gradient was computed: call loss.backward() after computing the loss")
        grads.append(torch.cat(computed).clone())
    if torch.allclose(grads[1], 2 * grads[0], rtol=1e-3, atol=1e-8) and grads[0].abs().sum() > 0:
        _fail("the gradients pile up from step to step: call optimizer.zero_grad() before loss.backward()")

    trial = copy.deepcopy(net).train()
    trainer = type(optimizer)(trial.parameters(), **optimizer.defaults)
    before = [p.detach().clone() for p in trial.parameters()]
    torch.manual_seed(0)
    losses = [float(np.mean([train_step(trial, b, criterion, trainer) for b in batches])) for _ in range(epochs)]
    if all(torch.equal(a, p) for a, p in zip(before, trial.parameters())):
        _fail("the weights never change: call optimizer.step() after loss.backward()")
    if not np.isfinite(losses).all():
        _fail("the loss became NaN or infinite: is the learning rate too large?")
    first, last = losses[0], float(np.mean(losses[-2:]))
    faces = sum(len(b["image"]) for b in batches)
    if not last < 0.8 * first:
        _fail(
            f"on {faces} faces the loss went from {first:.3f} to {last:.3f} in {epochs} passes; it should fall clearly"
        )
    return f"OK: on {faces} faces the loss falls from {first:.3f} to {last:.3f} in {epochs} passes"


def check_face_crop(crop: np.ndarray, image: np.ndarray, box: np.ndarray, input_size: int, box_scale: float) -> str:
    """Check a network input cut by hand: square around the box, grey, resized, standardised.

    Args:
        crop: the learner's (S, S) float crop.
        image: (H, W, 3) uint8 RGB photo it was cut from.
        box: (4,) the face box x, y, w, h in pixels.
        input_size: S, the network's crop side in pixels.
        box_scale: crop side as a multiple of the box's longer side.

    Returns:
        One line saying what passed.

    Raises:
        CheckFailed: wrong shape (still colour, not resized), not standardised, or not the face
            in the box (compared with the crop :func:`fkp.geometry.box_affine` cuts).
    """
    crop = np.asarray(crop)
    size = (input_size, input_size)
    if crop.ndim == 3 and crop.shape[-1] == 3:
        _fail(f"the crop is {crop.shape}, still colour: turn it grey with cv2.cvtColor(square, cv2.COLOR_RGB2GRAY)")
    if crop.shape != size:
        _fail(f"the crop is {crop.shape}, the network takes {size}: cv2.resize(gray, {size})")
    if not np.issubdtype(crop.dtype, np.floating):
        _fail(f"the crop is {crop.dtype}: standardise it to float numbers with geometry.standardize")
    if abs(float(crop.mean())) > 0.05 or abs(float(crop.std()) - 1) > 0.05:
        _fail(
            f"mean {crop.mean():.2f} and standard deviation {crop.std():.2f}: standardise it to mean 0 and standard deviation 1"
        )
    affine = geometry.box_affine(np.asarray(box, dtype=np.float32), input_size, box_scale)
    import cv2

    reference = geometry.warp_crop(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), affine, input_size).astype(np.float64)
    match = float(np.corrcoef(crop.astype(np.float64).ravel(), reference.ravel())[0, 1])
    if match < 0.9:
        _fail(
            f"this is not the face in the box (correlation {match:.2f} with the model's crop): the square has side "
            f"max(w, h) * {box_scale} and the box's centre as its centre"
        )
    return f"OK: {size} float crop, mean 0, standard deviation 1, the face in the box (correlation {match:.3f} with the model's crop)"


def check_overlay_placement(matrix: np.ndarray, anchors: np.ndarray, keypoints: np.ndarray) -> str:
    """Check an overlay's placement: a similarity that maps its anchors onto the face, upright side up.

    Args:
        matrix: (2, 3) overlay pixels -> photo pixels (as :func:`fkp.filters.similarity_transform` returns).
        anchors: (K, 2) anchor points in the overlay's pixels.
        keypoints: (68, 2) the face's points in the photo.

    Returns:
        One line saying what passed.

    Raises:
        CheckFailed: not a (2, 3) matrix, a mirror or shear rather than a similarity, or anchors
            that land outside the face's box.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (2, 3):
        _fail(f"the matrix is {matrix.shape}: OpenCV's affine maps are (2, 3)")
    linear = matrix[:, :2]
    if np.linalg.det(linear) <= 0:
        _fail(
            "the matrix mirrors the picture (negative determinant): are the anchors and the targets in the same order?"
        )
    a, b = linear[0, 0], linear[1, 0]
    if not np.allclose(linear, [[a, -b], [b, a]], atol=1e-6 * max(1.0, float(np.abs(linear).max()))):
        _fail(
            "the matrix is not a similarity (it shears or scales x and y differently): fit it with filters.similarity_transform"
        )
    placed = geometry.apply_affine(np.asarray(anchors, dtype=np.float64), matrix)
    x, y, w, h = geometry.keypoints_box(np.asarray(keypoints))
    inside = (placed[:, 0] >= x) & (placed[:, 0] <= x + w) & (placed[:, 1] >= y) & (placed[:, 1] <= y + h)
    if not inside.all():
        outside = placed[~inside][0]
        _fail(
            f"{int((~inside).sum())} of {len(placed)} anchors land outside the face box "
            f"(x {x:.0f}..{x + w:.0f}, y {y:.0f}..{y + h:.0f}), the first at ({outside[0]:.0f}, {outside[1]:.0f}): "
            "are the targets the right keypoints?"
        )
    return f"OK: a similarity (scale {np.hypot(a, b):.3f}, angle {np.degrees(np.arctan2(b, a)):.1f} degrees); all {len(placed)} anchors inside the face box"
