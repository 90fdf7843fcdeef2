"""What a network is trained to do: classify (labels) or reconstruct its input (autoencoders).

An objective turns a batch of resident tensors into (network input, target), computes the loss,
counts correct predictions (classification only) and says which validation result is better.
All results stay tensors on the device: the trainer syncs once per epoch, never per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

# Evaluation noise comes in fixed chunks, each seeded by its position, so the noisy validation and
# test inputs are identical across epochs, individuals and evaluation batch sizes (multiples of this).
NOISE_CHUNK = 128
_NOISE_SEED = 7_919


@dataclass(frozen=True)
class Classification:
    loss_name: str = "mse"  # "mse": softmax vs one-hot (Klos); "cross_entropy"
    classes: int = 10
    has_accuracy: bool = True

    def batch(self, x: torch.Tensor, y: torch.Tensor, **_: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return x, y

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        output = output.float()
        if self.loss_name == "cross_entropy":
            return F.cross_entropy(output, target)
        # Not F.one_hot: on the CPU it checks the labels' range with two host reads per batch.
        one_hot = (target.unsqueeze(1) == torch.arange(self.classes, device=target.device)).to(output.dtype)
        return F.mse_loss(torch.softmax(output, dim=1), one_hot)

    def correct(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (output.argmax(dim=1) == target).sum()

    @staticmethod
    def better(candidate: tuple[float, float | None], best: tuple[float, float | None] | None) -> bool:
        """(val_loss, val_accuracy): higher accuracy wins, equal accuracy falls back to lower loss."""
        if best is None:
            return True
        return (candidate[1], -candidate[0]) > (best[1], -best[0])


@dataclass(frozen=True)
class Reconstruction:
    """Autoencoder: the target is the clean input; `noise_sigma` > 0 makes it denoising."""

    noise_sigma: float = 0.0
    has_accuracy: bool = False

    def batch(self, x: torch.Tensor, y: torch.Tensor, *, generator: torch.Generator | None = None,
              split: int = 0, start: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.noise_sigma <= 0:
            return x, x
        if start is None:  # training: fresh noise every batch from the task's generator
            noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        else:  # evaluation: the same noise for the same sample every time
            noise = fixed_noise(x.shape, split, start, x.device, x.dtype)
        return x + self.noise_sigma * noise, x

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(output.float(), target)

    def correct(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.zeros((), device=output.device)

    @staticmethod
    def better(candidate: tuple[float, float | None], best: tuple[float, float | None] | None) -> bool:
        return best is None or candidate[0] < best[0]


def fixed_noise(shape: torch.Size, split: int, start: int, device: Any, dtype: torch.dtype) -> torch.Tensor:
    """Standard normal noise for samples start..start+n of evaluation split `split` (1 val, 2 test)."""
    if start % NOISE_CHUNK:
        raise ValueError(f"evaluation batches must start at multiples of {NOISE_CHUNK}")
    generator = torch.Generator(device=device)
    chunks = []
    for offset in range(0, shape[0], NOISE_CHUNK):
        generator.manual_seed(_NOISE_SEED + 1_000_003 * split + start + offset)
        rows = min(NOISE_CHUNK, shape[0] - offset)
        chunks.append(torch.randn((rows, *shape[1:]), generator=generator, device=device, dtype=dtype))
    return torch.cat(chunks)
