"""Weight transfer from a donor network (`train.transfer`; seed 004's model repository), torch side.

A network's "layers" here are the modules that own tensors in its state dict, in state-dict order
(for a layer genome: each convolution, batch norm and dense layer; for a module genome the same inside
the encoder and decoder). The child takes the donor's tensors for the longest common prefix of layers
whose tensor names (within the layer) and shapes are identical; every layer after the first
difference keeps its fresh initialisation. Works on any two `nn.Module`s, so layer and module genomes
alike. Weights travel as `torch.save` bytes of a CPU state dict and are read back with
`weights_only=True` only (no unpickling of arbitrary objects).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TransferRecord:
    """What one transfer did (recorded in the result's extra["transfer"])."""

    layers: int  # layers transferred (the common prefix)
    total_layers: int  # layers of the child
    params: int  # parameters transferred (trainable tensors; buffers such as batch-norm statistics not counted)
    frozen: tuple[str, ...] = ()  # parameter names frozen for train.freeze_epochs

    def as_extra(self, donor: int) -> dict:
        return {"donor": donor, "layers": self.layers, "total_layers": self.total_layers, "params": self.params}


def state_bytes(model: nn.Module) -> bytes:
    """The model's state dict as `torch.save` bytes (CPU, contiguous: loads anywhere)."""
    buffer = io.BytesIO()
    torch.save({name: value.detach().cpu().contiguous() for name, value in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def load_state(data: bytes) -> dict[str, torch.Tensor]:
    """A state dict from `state_bytes` output; ValueError for anything else."""
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - foreign or truncated bytes
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"unreadable weights: {reason}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError("weights are not a state dict of tensors")
    return state


def layer_groups(state: dict[str, torch.Tensor]) -> list[tuple[str, list[str]]]:
    """(owning module's name, its tensor names) per layer, in state-dict order."""
    groups: dict[str, list[str]] = {}
    for name in state:
        owner, _, _ = name.rpartition(".")
        groups.setdefault(owner, []).append(name)
    return list(groups.items())


def _signature(state: dict[str, torch.Tensor], owner: str, names: list[str]) -> tuple:
    return tuple((name[len(owner):], tuple(state[name].shape)) for name in names)


def common_prefix_layers(child: dict[str, torch.Tensor], donor: dict[str, torch.Tensor]) -> int:
    """How many leading layers of `child` match `donor`'s in tensor names and shapes."""
    count = 0
    for (owner, names), (donor_owner, donor_names) in zip(layer_groups(child), layer_groups(donor)):
        if _signature(child, owner, names) != _signature(donor, donor_owner, donor_names):
            break
        count += 1
    return count


def transfer_weights(model: nn.Module, donor: dict[str, torch.Tensor], *, freeze: bool = False) -> TransferRecord:
    """Copy the donor's tensors into `model` for the longest common prefix of layers; with `freeze`
    the transferred parameters stop requiring gradients (the trainer thaws them after
    train.freeze_epochs)."""
    state = model.state_dict()
    groups = layer_groups(state)
    prefix = common_prefix_layers(state, donor)
    donor_groups = layer_groups(donor)
    parameters = dict(model.named_parameters())
    copied_params = 0
    frozen: list[str] = []
    with torch.no_grad():
        for (_, names), (_, donor_names) in zip(groups[:prefix], donor_groups[:prefix]):
            for name, donor_name in zip(names, donor_names):
                state[name].copy_(donor[donor_name].to(state[name].device, state[name].dtype))
                if name in parameters:
                    copied_params += state[name].numel()
                    if freeze:
                        parameters[name].requires_grad_(False)
                        frozen.append(name)
    return TransferRecord(prefix, len(groups), copied_params, tuple(frozen))


__all__ = ["TransferRecord", "common_prefix_layers", "layer_groups", "load_state", "state_bytes", "transfer_weights"]
