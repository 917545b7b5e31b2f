"""The batches of the training loop: what a batch holds (:class:`Batch`), each pass's batches made
lazily, a per-rank part of every global batch under torchrun (:class:`Batches`), and, when fine-tuning,
the images converted and augmented in worker processes (:class:`ImageLoader`).

Each image is augmented with its own seed per epoch (:func:`~styleforge.attributes.augment.sample_seed`),
so the result does not depend on the number of workers or of processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from .augment import augment_sample
from .labels import label_mask

__all__ = ["Batch", "Shards", "Batches", "ImageLoader"]


@dataclass
class Batch:
    """A batch for :func:`~styleforge.engine.fit.fit`.

    Attributes:
        x: Features ``(B, D)`` (frozen backbone) or images ``(B, 3, S, S)`` in [0, 1] (fine-tuning).
        labels: Attribute → numeric ``(B,)`` float in [-1, 1] with NaN where unlabelled, or
            categorical ``(B,)`` int64 with -1 where unlabelled.
    """

    x: Tensor
    labels: dict[str, Tensor]

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def counts(self) -> dict[str, float]:
        """Labelled values per attribute: each term's weight in an epoch's mean."""
        return {name: float(label_mask(y).sum()) for name, y in self.labels.items()}


class Shards(Protocol):
    """What :class:`Batches` needs of a data-parallel run (the engine's
    :class:`~styleforge.engine.distributed.Distributed` is one)."""

    def shard(self, n: int) -> slice:
        """This rank's contiguous part of ``n`` items."""


class Batches:
    """The batches of one pass, made lazily (so augmented images are never all in memory).

    Under torchrun, each global batch (the one a single process would make) is split into
    contiguous per-rank parts and this rank gets its part. With ``augment``, one seed is drawn per
    epoch from ``generator`` (after the shuffle) and each image is augmented with
    :func:`~styleforge.attributes.augment.sample_seed` of it and the image's row.

    Args:
        n: Images in the pass.
        batch_size: Images per global batch.
        make: ``(positions (b,) int64 into the pass, epoch seed or None)`` for every batch of the
            pass → the batches.
        generator: Shuffles (and seeds the augmentation); ``None``: in order.
        dist: The distributed run, or ``None``.
        augment: Draw an epoch seed.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        make: Callable[[list[Tensor], int | None], Iterable[Batch]],
        generator: torch.Generator | None = None,
        dist: Shards | None = None,
        augment: bool = False,
    ) -> None:
        self.n, self.batch_size, self.make, self.generator = n, batch_size, make, generator
        self.dist, self.augment = dist, augment

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        order = (
            torch.randperm(self.n, generator=self.generator)
            if self.generator is not None
            else torch.arange(self.n)
        )
        epoch_seed = None
        if self.augment and self.generator is not None:
            epoch_seed = int(torch.randint(0, 2**62, (), generator=self.generator))
        parts = []
        for start in range(0, self.n, self.batch_size):
            part = order[start : start + self.batch_size]
            parts.append(part[self.dist.shard(len(part))] if self.dist is not None else part)
        return iter(self.make(parts, epoch_seed))


class _ImageSet(torch.utils.data.Dataset):
    """Key ``(row, seed or None)`` → image ``row`` as float ``(3, S, S)`` in [0, 1], augmented with
    ``seed`` (:func:`~styleforge.attributes.augment.augment_sample`) when one is given."""

    def __init__(self, images: Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int | None]) -> Tensor:
        row, seed = key
        x = self.images[row].float().div_(255)
        return augment_sample(x, seed) if seed is not None else x


class _Stack:
    """Collates images ``(3, S, S)`` into ``(B, 3, S, S)`` (``B`` may be 0 on a rank with no share)."""

    def __init__(self, shape: Sequence[int]) -> None:
        self.shape = tuple(shape)

    def __call__(self, samples: list[Tensor]) -> Tensor:
        return torch.stack(samples) if samples else torch.empty((0, *self.shape))


class _PassSampler:
    """The batch sampler of :class:`ImageLoader`: yields the keys of the pass it was last given."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, int | None]]] = []

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[tuple[int, int | None]]]:
        return iter(self.batches)


class ImageLoader:
    """Every pass over the decoded images (fine-tuning): one ``DataLoader`` whose ``workers``
    persistent processes convert and augment images, in pinned memory for CUDA.

    Args:
        images: uint8 ``(N, 3, S, S)``.
        workers: Worker processes; 0: in this process.
        pin_memory: Collate batches in page-locked memory.
    """

    def __init__(self, images: Tensor, workers: int, pin_memory: bool) -> None:
        self.sampler = _PassSampler()
        self.loader: torch.utils.data.DataLoader | None = torch.utils.data.DataLoader(
            _ImageSet(images),
            batch_sampler=self.sampler,
            num_workers=workers,
            collate_fn=_Stack(images.shape[1:]),
            pin_memory=pin_memory,
            persistent_workers=workers > 0,
            generator=torch.Generator(),  # its seed draw must not touch the global generator
        )

    def __call__(self, keys: list[list[tuple[int, int | None]]]) -> Iterator[Tensor]:
        """The batches ``(b, 3, S, S)`` float in [0, 1] of ``keys``' lists of ``(row, seed)``, in order."""
        assert self.loader is not None
        self.sampler.batches = keys
        return iter(self.loader)

    def close(self) -> None:
        """Stops the worker processes."""
        self.loader = None
