"""Architectures and preprocessing shared by training and inference.

This file is copied into ``model.tar.gz`` as ``code/model.py``: ``inference.py`` rebuilds the exact architecture and
evaluation transform from it, so it must only depend on torch, torchvision and Pillow (what the PyTorch DLC ships).
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import torch
from torch import nn
from torchvision import models, transforms

LOGGER = logging.getLogger(__name__)

ARCHS = ("resnet18", "resnet34", "resnet50", "smallcnn")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_TORCHVISION_WEIGHTS = {
    "resnet18": models.ResNet18_Weights.IMAGENET1K_V1,
    "resnet34": models.ResNet34_Weights.IMAGENET1K_V1,
    "resnet50": models.ResNet50_Weights.IMAGENET1K_V2,
}


class SmallCNN(nn.Module):
    """A tiny conv net for tests and demos; exposes ``fc`` like torchvision's ResNets so head logic is shared."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
            )

        self.features = nn.Sequential(
            block(3, 32),
            nn.MaxPool2d(2),
            block(32, 64),
            nn.MaxPool2d(2),
            block(64, 128),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.fc = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def create_model(arch: str, num_classes: int) -> nn.Module:
    """Build an architecture with a fresh ``num_classes`` head and random weights.

    Args:
        arch: one of ``ARCHS``.
        num_classes: size of the classification head.

    Returns:
        The model (CPU, train mode).

    Raises:
        ValueError: unknown architecture or non-positive class count.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; valid: {', '.join(ARCHS)}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if arch == "smallcnn":
        return SmallCNN(num_classes)
    net: models.ResNet = getattr(models, arch)(weights=None)
    net.fc = nn.Linear(net.fc.in_features, num_classes)
    return net


def _network_reachable(host: str = "download.pytorch.org", port: int = 443, timeout: float = 3.0) -> bool:
    # NOTE: SageMaker network isolation and CI have no route out; probe first so "auto" degrades to random init
    # in seconds instead of hanging on torch.hub's download retries.
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except (OSError, RuntimeError):  # pytest-socket raises a RuntimeError subclass
        return False


def _load_backbone_state(net: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    # The checkpoint's head was trained for another label set (ImageNet's 1000 classes or another run), so drop
    # every tensor whose shape does not fit and require that everything else loads.
    own = net.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in usable and not k.startswith("fc.")]
    if missing:
        raise ValueError(f"pretrained weights {source} do not match the architecture (missing {missing[:3]}...)")
    net.load_state_dict(usable, strict=False)
    LOGGER.info("loaded pretrained weights from %s (%d tensors)", source, len(usable))


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # one of our own checkpoints
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state_dict")
    return {k.removeprefix("module."): v for k, v in state.items()}


def find_weights_file(weights_dir: str | None) -> Path | None:
    """Return the single ``*.pth``/``*.pt`` file of a weights channel, or None when there is none.

    Raises:
        ValueError: the channel holds more than one candidate file.
    """
    if not weights_dir or not Path(weights_dir).is_dir():
        return None
    files = sorted(p for p in Path(weights_dir).rglob("*") if p.suffix in (".pth", ".pt") and p.is_file())
    if len(files) > 1:
        raise ValueError(f"weights channel {weights_dir} holds {len(files)} weight files; expected one")
    return files[0] if files else None


def build_model(
    arch: str,
    num_classes: int,
    pretrained: str = "auto",
    freeze_backbone: bool = False,
    weights_dir: str | None = None,
) -> nn.Module:
    """Build a model for training, optionally starting from pretrained weights.

    Args:
        arch: one of ``ARCHS``.
        num_classes: size of the new classification head.
        pretrained: ``auto`` (weights channel, else torchvision download when reachable, else random), ``none``,
            or a path to a ``.pth`` state_dict.
        freeze_backbone: train only the head.
        weights_dir: the ``weights`` channel directory, if any.

    Returns:
        The model; frozen parameters have ``requires_grad=False``.
    """
    net = create_model(arch, num_classes)
    if pretrained == "auto":
        weights_file = find_weights_file(weights_dir)
        if weights_file is not None:
            _load_backbone_state(net, _read_state_dict(weights_file), str(weights_file))
        elif arch in _TORCHVISION_WEIGHTS:
            weights = _TORCHVISION_WEIGHTS[arch]
            cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
            if cached.is_file() or _network_reachable():
                state = weights.get_state_dict(progress=False)
                _load_backbone_state(net, state, weights.url)
            else:
                LOGGER.warning("no weights channel and no network: %s starts from random weights", arch)
        else:
            LOGGER.info("%s has no pretrained weights; starting from random weights", arch)
    elif pretrained != "none":
        path = Path(pretrained)
        if not path.is_file():
            raise ValueError(f"pretrained weights file {pretrained!r} does not exist")
        _load_backbone_state(net, _read_state_dict(path), str(path))
    if freeze_backbone:
        for name, param in net.named_parameters():
            param.requires_grad = name.startswith("fc.")
    return net


def eval_transform(
    image_size: int, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD
) -> transforms.Compose:
    """Deterministic preprocessing for valid/test and serving: resize, center crop, tensor, normalise."""
    return transforms.Compose(
        [
            transforms.Resize(round(image_size * 256 / 224)),
            transforms.CenterCrop(image_size),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )
