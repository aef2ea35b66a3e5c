"""ImageFolder datasets for the dogImages layout (``train/ valid/ test/<NNN.Name>/*.jpg``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from torchvision import datasets, transforms

from model import IMAGENET_MEAN, IMAGENET_STD, eval_transform

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class SplitDirs:
    train: Path
    valid: Path
    test: Path


def resolve_split_dirs(
    training: str | None, train: str | None = None, valid: str | None = None, test: str | None = None
) -> SplitDirs:
    """Find the three split directories from either one ``training`` channel or three separate channels.

    Args:
        training: a directory holding ``train/ valid/ test/`` (the channel the state machine uses).
        train: separate train channel. valid: separate valid channel. test: separate test channel.

    Returns:
        The three directories.

    Raises:
        ValueError: neither layout is complete; the message names what is missing.
    """
    if train and valid and test:
        dirs = SplitDirs(Path(train), Path(valid), Path(test))
    elif training:
        root = Path(training)
        # A dogImages.zip extracted as is nests everything one level down.
        if not (root / "train").is_dir() and (root / "dogImages" / "train").is_dir():
            root = root / "dogImages"
        dirs = SplitDirs(root / "train", root / "valid", root / "test")
    else:
        raise ValueError(
            "no data: set SM_CHANNEL_TRAINING (holding train/ valid/ test/) or all of SM_CHANNEL_TRAIN, "
            "SM_CHANNEL_VALID and SM_CHANNEL_TEST (or --data-dir / --train-dir --valid-dir --test-dir)"
        )
    for split in SPLITS:
        path = getattr(dirs, split)
        if not path.is_dir():
            raise ValueError(f"{split} split directory {path} does not exist")
    return dirs


AUGMENTATIONS = ("flip", "crop", "none")


def train_transform(image_size: int, augment: str = "flip") -> transforms.Compose:
    """Augmentation for the train split only.

    Args:
        image_size: output side in pixels.
        augment: ``flip`` (random resized crop, horizontal flip, colour jitter: photos such as dogs), ``crop``
            (the same without the flip, for mirror-sensitive data such as the embedded digits), or ``none``.
    """
    if augment not in AUGMENTATIONS:
        raise ValueError(f"unknown augment {augment!r}; valid: {', '.join(AUGMENTATIONS)}")
    if augment == "none":
        return eval_transform(image_size)
    steps: list[object] = [transforms.RandomResizedCrop(image_size, scale=(0.6, 1.0), ratio=(0.8, 1.25))]
    if augment == "flip":
        steps.append(transforms.RandomHorizontalFlip())
    steps += [
        transforms.ColorJitter(0.2, 0.2, 0.2),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ]
    return transforms.Compose(steps)


def _rgb_loader(path: str) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB")


def build_datasets(dirs: SplitDirs, image_size: int, augment: str = "flip") -> dict[str, datasets.ImageFolder]:
    """ImageFolder per split; augmentation on train only.

    Raises:
        ValueError: the splits disagree on the class list.
    """
    out = {
        split: datasets.ImageFolder(
            str(getattr(dirs, split)),
            transform=train_transform(image_size, augment) if split == "train" else eval_transform(image_size),
            loader=_rgb_loader,
        )
        for split in SPLITS
    }
    classes = out["train"].classes
    for split in ("valid", "test"):
        if out[split].classes != classes:
            extra = sorted(set(out[split].classes) ^ set(classes))
            raise ValueError(f"{split} classes differ from train classes: {extra[:5]}")
    return out
