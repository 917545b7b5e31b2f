"""What the attribute network's commands take in memory, estimated before their first large tensor.

``train-attrs`` holds every image decoded at ``--size`` (8-bit) and runs the backbone on batches:
16 images at a time without gradients for a frozen backbone's features, ``--batch-size`` with
gradients when fine-tuning. ``score`` runs ``--batch-size`` images at the model's size. Each is
checked against the memory available (:func:`styleforge.device.check_fits`) before the images are
decoded, so ``--size 100000`` is refused in a second instead of being killed by the system.

The per-pixel figures were measured on the CPU (float32): the growth of a process's peak resident
memory over one pass of the backbone (8 images of 128 px, and 4 of 256 px, gave the same figures
within a sixth), with about a fifth added for allocator slack. They scale with the pixels of a
batch, as the activations do.
"""

from __future__ import annotations

import torch

from ..device import available_memory, check_fits

__all__ = [
    "BACKBONE_BYTES_PER_PIXEL",
    "BACKBONE_PARAMETERS",
    "FEATURE_BATCH",
    "check_scoring",
    "check_training",
    "scoring_bytes",
    "training_bytes",
]

#: Peak bytes per input pixel of one image in a backbone's pass: (without gradients, with the
#: backward pass's saved activations). The parameters' gradients are counted apart.
BACKBONE_BYTES_PER_PIXEL: dict[str, tuple[int, int]] = {
    "resnet18": (256, 1024),
    "resnet50": (768, 3072),
    "vgg16": (1024, 2560),
    "vgg19": (1024, 2560),
}
#: Parameters of each backbone as the hypercolumn uses it (a VGG truncated after ``relu5_1``).
BACKBONE_PARAMETERS: dict[str, int] = {
    "resnet18": 11_176_512,
    "resnet50": 23_508_032,
    "vgg16": 9_995_072,
    "vgg19": 12_944_960,
}
#: Images per pass when a frozen backbone's features are computed (``attributes.train``).
FEATURE_BATCH = 16
#: Bytes that do not grow with the images (the interpreter's working set, the heads, temporaries).
_FIXED = 64 * 2**20


def training_bytes(arch: str, count: int, size: int, batch_size: int, finetune: bool) -> int:
    """Estimated memory of a ``train-attrs`` run: ``count`` images decoded at ``size × size`` (8-bit,
    all held), the backbone's weights, and its largest pass (with gradients and the optimiser's
    state when fine-tuning)."""
    inference, training = BACKBONE_BYTES_PER_PIXEL[arch]
    params = BACKBONE_PARAMETERS[arch]
    pixels = size * size
    need = count * 3 * pixels + 4 * params + _FIXED
    if finetune:
        # Saved activations, the gradients and Adam's two moments, and a batch's float copies.
        need += batch_size * (training * pixels + 3 * 4 * 3 * pixels) + 12 * params
    else:
        need += FEATURE_BATCH * (inference * pixels + 4 * 3 * pixels)
    return need


def check_training(
    arch: str,
    count: int,
    size: int,
    batch_size: int,
    finetune: bool,
    device: torch.device,
    *,
    available: int | None = None,
) -> int:
    """Refuses a ``train-attrs`` run whose estimate (:func:`training_bytes`) does not fit.

    Raises:
        ResourceError: Naming ``--size`` (and ``--batch-size`` when fine-tuning), both figures and
            what to try.
    """
    need = training_bytes(arch, count, size, batch_size, finetune)
    what = f"--size {size} --batch-size {batch_size}" if finetune else f"--size {size} with {count} images"
    fix = "a smaller --size or --batch-size" if finetune else "a smaller --size (or fewer images)"
    return check_fits(need, device, what, fix, available=available)


def scoring_bytes(arch: str, size: int, batch_size: int) -> int:
    """Estimated memory of ``score``: a batch decoded and resized to the model's ``size``, and one
    pass of the backbone without gradients."""
    inference, _ = BACKBONE_BYTES_PER_PIXEL.get(arch, max(BACKBONE_BYTES_PER_PIXEL.values()))
    pixels = size * size
    return (
        batch_size * (inference * pixels + 2 * 4 * 3 * pixels) + 4 * BACKBONE_PARAMETERS.get(arch, 0) + _FIXED
    )


def check_scoring(
    arch: str, size: int, batch_size: int, device: torch.device, *, available: int | None = None
) -> int:
    """Refuses a ``score`` run whose estimate (:func:`scoring_bytes`) does not fit.

    Raises:
        ResourceError: Naming ``--batch-size`` and the model's size, both figures and the largest
            batch that fits (if one does).
    """
    free = available if available is not None else available_memory(device)
    fits = [
        b for b in range(batch_size - 1, 0, -1) if free is not None and scoring_bytes(arch, size, b) <= free
    ]
    fix = (
        f"--batch-size {fits[0]}" if fits else "freeing memory (one image at this model's size does not fit)"
    )
    return check_fits(
        scoring_bytes(arch, size, batch_size),
        device,
        f"--batch-size {batch_size} (images of {size} px for this model)",
        fix,
        available=free,
    )
