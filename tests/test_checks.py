"""fkp.checks: each check passes a right answer and names the mistake in a wrong one."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from fkp import art, filters, geometry, samples
from fkp.checks import (
    CheckFailed,
    check_face_crop,
    check_loss_and_optimizer,
    check_net,
    check_overlay_placement,
    check_train_step,
)
from fkp.landmarks import NUM_KEYPOINTS
from fkp.models import NaimishNet, NaimishNetConfig

SIZE = 32


class Tiny(nn.Module):
    """A small right answer: (N, 1, 32, 32) -> (N, 68, 2) in [-1, 1]."""

    def __init__(
        self, squash: bool = True, shape: tuple[int, ...] = (NUM_KEYPOINTS, 2), in_features: int = 8 * 8 * 8
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ELU(), nn.MaxPool2d(4))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(in_features, NUM_KEYPOINTS * 2))
        self.squash, self.shape = squash, shape

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        out = self.head(self.features(crops))
        out = torch.tanh(out) if self.squash else out * 10
        return out.view(-1, *self.shape)


def test_check_net_passes_a_right_network_and_the_package_one():
    assert check_net(Tiny(), SIZE).startswith("OK")
    assert check_net(NaimishNet(NaimishNetConfig(input_size=96)), 96).startswith("OK")


@pytest.mark.parametrize(
    ("net", "words"),
    [
        (Tiny(in_features=100), "in_features"),
        (Tiny(shape=(NUM_KEYPOINTS * 2,)), "reshape it to (N, 68, 2)"),
        (Tiny(squash=False), "torch.tanh"),
        ("not a net", "nn.Module"),
    ],
)
def test_check_net_names_the_mistake(net, words):
    with pytest.raises(CheckFailed, match=None) as failed:
        check_net(net, SIZE)
    assert words in str(failed.value)


def test_check_net_finds_an_unused_layer():
    net = Tiny()
    net.spare = nn.Linear(3, 3)  # defined, never used in forward
    with pytest.raises(CheckFailed, match="no gradient reaches spare"):
        check_net(net, SIZE)


def test_check_loss_and_optimizer():
    net = Tiny()
    assert check_loss_and_optimizer(nn.SmoothL1Loss(), torch.optim.Adam(net.parameters(), lr=1e-3), net).startswith(
        "OK"
    )
    with pytest.raises(CheckFailed, match="grow with the error"):
        check_loss_and_optimizer(lambda p, t: (p - t).mean() * 0, torch.optim.Adam(net.parameters()), net)
    with pytest.raises(CheckFailed, match="one number"):
        check_loss_and_optimizer(nn.SmoothL1Loss(reduction="none"), torch.optim.Adam(net.parameters()), net)
    with pytest.raises(CheckFailed, match="does not hold"):
        check_loss_and_optimizer(nn.SmoothL1Loss(), torch.optim.Adam(Tiny().parameters()), net)
    with pytest.raises(CheckFailed, match="learning rate of 10"):
        check_loss_and_optimizer(nn.SmoothL1Loss(), torch.optim.SGD(net.parameters(), lr=10), net)


def _batches() -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(32, 1, SIZE, SIZE, generator=generator)
    keypoints = torch.rand(32, NUM_KEYPOINTS, 2, generator=generator) * 1.6 - 0.8
    return [{"image": images[:16], "keypoints": keypoints[:16]}, {"image": images[16:], "keypoints": keypoints[16:]}]


def right_step(net, batch, criterion, optimizer):
    predicted = net(batch["image"])
    loss = criterion(predicted, batch["keypoints"])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def no_zero_grad(net, batch, criterion, optimizer):
    loss = criterion(net(batch["image"]), batch["keypoints"])
    loss.backward()
    optimizer.step()
    return loss.item()


def no_step(net, batch, criterion, optimizer):
    loss = criterion(net(batch["image"]), batch["keypoints"])
    optimizer.zero_grad()
    loss.backward()
    return loss.item()


def no_backward(net, batch, criterion, optimizer):
    loss = criterion(net(batch["image"]), batch["keypoints"])
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()


def returns_tensor(net, batch, criterion, optimizer):
    loss = criterion(net(batch["image"]), batch["keypoints"])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def test_check_train_step_passes_the_five_lines_and_leaves_the_net_alone():
    torch.manual_seed(0)
    net = Tiny()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    message = check_train_step(right_step, net, nn.SmoothL1Loss(), optimizer, _batches())
    assert message.startswith("OK: on 32 faces the loss falls")
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert optimizer.state == {}


@pytest.mark.parametrize(
    ("step", "words"),
    [
        (no_zero_grad, "optimizer.zero_grad()"),
        (no_step, "optimizer.step()"),
        (no_backward, "loss.backward()"),
        (returns_tensor, "loss.item()"),
    ],
)
def test_check_train_step_names_the_missing_line(step, words):
    torch.manual_seed(0)
    net = Tiny()
    with pytest.raises(CheckFailed) as failed:
        check_train_step(step, net, nn.SmoothL1Loss(), torch.optim.Adam(net.parameters(), lr=1e-3), _batches())
    assert words in str(failed.value)


def test_check_train_step_sees_a_loss_that_does_not_fall():
    net = Tiny()
    with pytest.raises(CheckFailed, match="it should fall clearly"):
        check_train_step(right_step, net, nn.SmoothL1Loss(), torch.optim.SGD(net.parameters(), lr=1e-5), _batches())


def _photo_and_crop(box_scale: float = 1.35):
    photo = samples.grace_hopper()
    box = np.array([155.0, 105.0, 222.0, 222.0])
    x, y, w, h = box
    side = max(w, h) * box_scale
    left, top = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
    pad = round(side)
    padded = cv2.copyMakeBorder(photo, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    square = padded[top + pad : top + pad + round(side), left + pad : left + pad + round(side)]
    return photo, box, square


def test_check_face_crop():
    photo, box, square = _photo_and_crop()
    gray = cv2.cvtColor(square, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(gray, (96, 96), interpolation=cv2.INTER_AREA)
    assert check_face_crop(geometry.standardize(small), photo, box, 96, 1.35).startswith("OK")
    with pytest.raises(CheckFailed, match="still colour"):
        check_face_crop(cv2.resize(square, (96, 96)), photo, box, 96, 1.35)
    with pytest.raises(CheckFailed, match=r"cv2.resize"):
        check_face_crop(geometry.standardize(gray), photo, box, 96, 1.35)
    with pytest.raises(CheckFailed, match="standardise"):
        check_face_crop(small.astype(np.float32), photo, box, 96, 1.35)
    wrong = geometry.standardize(cv2.resize(cv2.cvtColor(photo[:200, :200], cv2.COLOR_RGB2GRAY), (96, 96)))
    with pytest.raises(CheckFailed, match="not the face in the box"):
        check_face_crop(wrong, photo, box, 96, 1.35)


def test_check_overlay_placement():
    keypoints = np.array(
        [[100 + 60 * np.cos(t), 100 + 70 * np.sin(t)] for t in np.linspace(0, 2 * np.pi, NUM_KEYPOINTS)]
    )
    keypoints[33], keypoints[51], keypoints[48], keypoints[54] = (100, 110), (100, 125), (80, 135), (120, 135)
    moustache = art.moustache_art()
    targets = keypoints[[33, 51, 48, 54]]
    anchors = moustache.anchors
    assert check_overlay_placement(filters.similarity_transform(anchors, targets), anchors, keypoints).startswith("OK")
    with pytest.raises(CheckFailed, match="outside the face box"):
        check_overlay_placement(filters.similarity_transform(anchors, targets + 200), anchors, keypoints)
    with pytest.raises(CheckFailed, match="mirrors"):
        check_overlay_placement(
            filters.similarity_transform(anchors, targets)[::-1] * [[1, 1, 0], [1, 1, 0]], anchors, keypoints
        )
    with pytest.raises(CheckFailed, match=r"\(2, 3\)"):
        check_overlay_placement(np.eye(3), anchors, keypoints)
