"""Weight transfer (train.transfer): the torch side copies exactly the longest common prefix of layers,
the driver's choice of donor is a pure function of its fold, and a transferred child trains."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from nascli.layers import build_model
from nascli.layers.autoencoder import build_autoencoder
from nascli.task import Result, Task
from nascli.train.evaluate import evaluate
from nascli.train.objectives import Classification
from nascli.train.trainer import TrainSettings, fit
from nascli.train.transfer import (
    layer_groups,
    load_state,
    state_bytes,
    transfer_weights,
)
from nascli.transfer import (
    TRANSFER_DONOR_KEY,
    Donor,
    Donors,
    best_match,
    common_prefix,
    genome_layers,
)
from tests.helpers import one_torch_thread  # noqa: F401 - autouse: training on one thread, as a worker trains

PARENT = "In_8_8:C_3-3-1-1-8:C_3-3-1-1-16:D_1-1-1-1-32:D_10"
CHILD = "In_8_8:C_3-3-1-1-8:C_3-3-1-1-8:D_1-1-1-1-32:D_10"  # the second convolution has fewer filters


def _trained_like(build) -> torch.nn.Module:
    """A donor whose every tensor differs from a fresh build's (as if trained)."""
    torch.manual_seed(1)
    model = build()
    with torch.no_grad():
        for value in model.state_dict().values():
            if value.is_floating_point():
                value.add_(torch.rand_like(value) + 0.5)
    return model


def _check_exact_prefix(parent_build, child_build, expected_layers: int) -> None:
    donor = load_state(state_bytes(_trained_like(parent_build)))  # through the repository's bytes
    torch.manual_seed(7)
    fresh = child_build().state_dict()
    torch.manual_seed(7)
    child = child_build()
    record = transfer_weights(child, donor)
    assert record.layers == expected_layers and record.total_layers == len(layer_groups(fresh))
    state = child.state_dict()
    groups = layer_groups(state)
    donor_names = [name for _, names in layer_groups(donor)[:expected_layers] for name in names]
    prefix_names = [name for _, names in groups[:expected_layers] for name in names]
    for name, donor_name in zip(prefix_names, donor_names):
        assert torch.equal(state[name], donor[donor_name]), name
        if state[name].is_floating_point():
            assert not torch.equal(state[name], fresh[name]), name
    for _, names in groups[expected_layers:]:
        for name in names:
            assert torch.equal(state[name], fresh[name]), f"{name} is not freshly initialised"
    parameters = dict(child.named_parameters())
    assert record.params == sum(parameters[n].numel() for n in prefix_names if n in parameters) > 0


def test_layer_genome_child_gets_exactly_the_common_prefix() -> None:
    # conv + batch norm of the first convolution; the second has other shapes, and everything after it is fresh
    _check_exact_prefix(lambda: build_model(PARENT), lambda: build_model(CHILD), expected_layers=2)


def test_module_genome_child_gets_exactly_the_common_prefix() -> None:
    parent = "3x3conv2d:16,3x3conv2d:16"
    child = "3x3conv2d:16,5x5conv2d:16"
    # the first convolution only: the 1x1 reduction convolutions after the difference have equal shapes
    # but stay fresh (a prefix, not a match of layers anywhere)
    _check_exact_prefix(lambda: build_autoencoder(parent, (1, 8, 8), 1),
                        lambda: build_autoencoder(child, (1, 8, 8), 1), expected_layers=1)


def test_an_identical_genome_takes_every_layer_and_freezing_stops_gradients() -> None:
    donor = _trained_like(lambda: build_model(PARENT)).state_dict()
    torch.manual_seed(3)
    child = build_model(PARENT)
    record = transfer_weights(child, donor, freeze=True)
    assert record.layers == record.total_layers
    assert set(record.frozen) == {name for name, _ in child.named_parameters()}
    assert not any(p.requires_grad for p in child.parameters())


def test_frozen_layers_stay_for_freeze_epochs_then_train() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    model = build_model(PARENT)
    first = next(model[0].parameters())
    first.requires_grad_(False)
    start = first.detach().clone()
    seen: list[bool] = []

    def progress(epoch, _record):
        seen.append(torch.equal(first.detach(), start))

    settings = TrainSettings(epochs=3, patience=10, batch_size=16, lr=1e-2)
    fit(model, x, y, x, y, Classification("cross_entropy", 10), settings, seed=0, progress=progress,
        frozen=[first], freeze_epochs=1)
    assert seen == [True, False, False] and first.requires_grad


def _digits_task(genome: str, **train) -> Task:
    return Task(genome=genome, task={"kind": "classification", "dataset": "digits"},
                train={"epochs": 4, "patience": 4, "batch_size": 64, "lr": 3e-3, "loss": "cross_entropy",
                       "threads": 1, **train}, search_space={"max_params": 100_000}, seed=3)


@pytest.mark.slow
def test_a_child_trains_from_its_donors_stored_weights_and_records_the_transfer() -> None:
    parent = evaluate(_digits_task(PARENT, transfer="parent"))
    assert parent.status == "done" and parent.extra["weights_bytes"] == len(parent.weights)
    assert "transfer" not in parent.extra  # no donor named: trained from scratch
    task = _digits_task(CHILD, transfer="parent", transfer_epochs=2, freeze_epochs=1, **{TRANSFER_DONOR_KEY: 41})
    child = evaluate(task, donor_weights=parent.weights)
    assert child.status == "done" and child.epochs_run <= 2
    state = load_state(child.weights)
    groups = layer_groups(state)
    assert child.extra["transfer"] == {"donor": 41, "layers": 2, "total_layers": len(groups),
                                       "params": sum(state[n].numel() for _, names in groups[:2] for n in names
                                                     if not n.endswith(("running_mean", "running_var",
                                                                        "num_batches_tracked")))}
    gone = evaluate(task)  # the donor's weights were evicted meanwhile: from scratch, and said so
    assert gone.status == "done" and gone.extra["transfer"] == {"donor": 41, "missing": True}
    assert gone.epochs_run == 4  # all of train.epochs, as any child that trains from scratch
    other_first_layer = CHILD.replace("C_3-3-1-1-8:", "C_1-1-1-1-8:", 1)
    unrelated = evaluate(dataclasses.replace(task, genome=other_first_layer), donor_weights=parent.weights)
    assert unrelated.extra["transfer"]["layers"] == 0 and unrelated.epochs_run == 4  # nothing to fine-tune
    plain = evaluate(_digits_task(CHILD))
    assert plain.weights is None and "weights_bytes" not in plain.extra  # the repository is off


# ---------------------------------------------------------------- the driver's side (pure)
layer_lists = st.lists(st.sampled_from(["C_3", "C_5", "P_2", "D_32", "D_10"]), max_size=6)


@given(layer_lists, layer_lists)
def test_common_prefix_is_the_longest_equal_start(a, b) -> None:
    n = common_prefix(a, b)
    assert a[:n] == b[:n] and (n == min(len(a), len(b)) or a[n] != b[n]) and n == common_prefix(b, a)


@given(layer_lists, st.lists(st.tuples(layer_lists, st.floats(0, 1)), max_size=6))
def test_best_match_has_the_longest_prefix_then_the_best_accuracy(layers, stored) -> None:
    donors = [Donor(i, tuple(donor_layers), accuracy) for i, (donor_layers, accuracy) in enumerate(stored)]
    chosen = best_match(layers, donors)
    longest = max((common_prefix(layers, d.layers) for d in donors), default=0)
    if longest == 0:
        assert chosen is None
        return
    assert common_prefix(layers, chosen.layers) == longest
    assert chosen.val_accuracy == max(d.val_accuracy for d in donors if common_prefix(layers, d.layers) == longest)
    again = best_match(layers, list(reversed(donors)))  # the order of the fold does not matter
    assert (again.layers, again.val_accuracy) == (chosen.layers, chosen.val_accuracy)


def test_genome_layers_split_both_genome_families() -> None:
    assert genome_layers("In_8_8:C_3-3-1-1-8:D_10") == ["In_8_8", "C_3-3-1-1-8", "D_10"]
    assert genome_layers("3x3conv2d:16,5x5conv2d:16") == ["3x3conv2d", "16", "5x5conv2d", "16"]


class _Strategy:
    def __init__(self) -> None:
        self.populations: dict[int, list] = {0: [], 1: []}
        self.waiting: set = set()

    def living(self):
        return [(island, 0, list(keys)) for island, keys in self.populations.items()]

    def undecided(self):
        return set(self.waiting)


def _finished(evaluation_id: int, genome: str, accuracy: float, **extra):
    result = Result(status="done", val_accuracy=accuracy, extra={"weights_bytes": 10, **extra})
    return SimpleNamespace(evaluation_id=evaluation_id, genome=genome, result=result)


A, B, C, D, E = (0, 0, 0), (0, 0, 1), (1, 0, 0), (1, 0, 1), (1, 0, 2)  # (island, generation, slot)


def test_repository_donors_come_from_the_childs_island_and_eviction_keeps_what_can_still_give() -> None:
    strategy = _Strategy()
    donors = Donors(SimpleNamespace(transfer="repository", repository_top_k=1, store_weights=False), strategy)
    donors.tell(A, _finished(1, "In_8_8:C_3:D_10", 0.9))
    donors.tell(B, _finished(2, "In_8_8:C_5:D_10", 0.5))
    donors.tell(C, _finished(3, "In_8_8:P_2:D_10", 0.4))
    donors.tell(D, _finished(9, "In_8_8:C_5:D_32:D_10", 0.3, cached_from=4))  # a copy: weights at its source
    strategy.populations = {0: [A, B], 1: [C, D]}
    task = Task(genome="In_8_8:C_5:D_32:D_10", task={}, train={})
    assert donors.attach(task, (1, 1, 0), [C]).train[TRANSFER_DONOR_KEY] == 4  # the longest prefix on island 1
    assert donors.attach(task, (0, 1, 0), [A]).train[TRANSFER_DONOR_KEY] == 2  # island 0 has B, not D
    assert donors.evictable() == []  # all living
    strategy.populations = {0: [A], 1: [C]}
    donors.tell((0, 1, 0), _finished(5, task.genome, 0.1))
    assert donors.evictable() == [2, 5]  # 4: the donor of a child in flight; 1: living and the best; 3: living
    donors.tell((1, 1, 0), _finished(6, task.genome, 0.2))
    strategy.waiting = {(1, 1, 0)}  # its generation is not decided yet: it may still enter
    assert donors.evictable() == [2, 4, 5]
    donors.evicted.update([2, 4, 5])
    strategy.populations, strategy.waiting = {0: [], 1: []}, set()
    assert donors.evictable() == [3, 6]  # 1 stays: the run's best
    assert donors.attach(task, (1, 2, 0), [C]) is task  # nobody living on island 1: no donor
    parent = Donors(SimpleNamespace(transfer="parent", repository_top_k=1, store_weights=False), strategy)
    parent.tell(A, _finished(1, "In_8_8:C_3:D_10", 0.9))
    assert parent.attach(task, (0, 1, 0), [A, B]).train[TRANSFER_DONOR_KEY] == 1
    assert parent.attach(task, (0, 1, 1), [B]) is task  # a parent without stored weights: no donor
    off = Donors(SimpleNamespace(transfer="off", repository_top_k=1, store_weights=False), strategy)
    off.tell(A, _finished(1, "In_8_8:C_3:D_10", 0.9))
    assert off.attach(task, (0, 1, 0), [A]) is task and off.evictable() == []


# ---------------------------------------------------------------- the report's transfers section
def _row(evaluation_id, *, seconds=10.0, epochs=5, transfer=None, stopped=None, train=None):
    extra = {**({"transfer": transfer} if transfer else {}), **({"stopped_at_epoch": stopped} if stopped else {})}
    return {"id": evaluation_id, "train_seconds": seconds, "epochs_run": epochs,
            "val_accuracy": 0.5 + evaluation_id / 100, "genome": f"g{evaluation_id}", "extra": extra,
            "train": train or {"epochs": 8, "transfer_epochs": 3}}


def test_transfers_payload_counts_donors_reuse_and_stop_rule_savings() -> None:
    from nascli.report.transfers import stop_rule_saving_seconds, transfers_payload
    from nascli.store.weights import RepositorySize

    rows = [_row(1), _row(2),
            _row(3, transfer={"donor": 1, "layers": 2, "total_layers": 4, "params": 100}),
            _row(4, transfer={"donor": 1, "layers": 0, "total_layers": 4, "params": 0}, stopped=2, epochs=2, seconds=4),
            _row(5, transfer={"donor": 2, "layers": 3, "total_layers": 3, "params": 50}),
            _row(6, transfer={"donor": 9, "missing": True}, stopped=2, epochs=2, seconds=4)]
    payload = transfers_payload(rows, RepositorySize(3, 3000))
    assert payload["children_with_donor"] == 3 and payload["children_with_weights"] == 2
    assert payload["donor_missing"] == 1 and payload["distinct_donors"] == 2
    assert payload["layers_reused_share"] == 5 / 11 and payload["params_transferred"] == 150
    assert [(d["donor_evaluation_id"], d["children"]) for d in payload["top_donors"]] == [(1, 2), (2, 1)]
    # 4 got no layers: its planned epochs are train.epochs (8), so 6 more at 2 s each; 6 likewise
    assert stop_rule_saving_seconds(rows[3]) == 12.0 == stop_rule_saving_seconds(rows[5])
    # a child that did get layers had train.transfer_epochs planned
    assert stop_rule_saving_seconds(_row(7, transfer={"donor": 1, "layers": 1, "total_layers": 2}, stopped=1,
                                         epochs=1, seconds=2)) == 4.0
    assert payload["stopped_early"] == 2 and payload["stop_rule_saved_hours"] == 24 / 3600
    assert (payload["repository_models"], payload["repository_bytes"]) == (3, 3000)
