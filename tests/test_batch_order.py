"""One batch order for every trainer, and one way to pass callbacks to train()."""

import pytest
import torch
import torch.nn as nn

from makemore.training.loop import BatchOrder, Recipe, TrainHooks, TrainState, train


class Recorder(nn.Module):
    """A model that remembers the inputs of every training forward."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.seen: list[torch.Tensor] = []

    def forward(self, idx, targets=None):
        if self.training:
            self.seen.append(idx[:, 0].clone())
        return None, (self.w - idx.float().mean()) ** 2


def data(n: int):
    X = torch.arange(n).unsqueeze(1)  # row i holds i: a batch's inputs are its indices
    return X, torch.arange(n)


def test_batches_are_one_permutation_per_pass():
    order = BatchOrder(20, 7, seed=5)
    gen = torch.Generator().manual_seed(5)
    first, second = torch.randperm(20, generator=gen), torch.randperm(20, generator=gen)
    batches = [order.next() for _ in range(4)]
    # 20 examples, batches of 7: two batches per pass, the 6 left over are skipped for a new permutation
    expected = [first[:7], first[7:14], second[:7], second[7:14]]
    assert all(torch.equal(b, e) for b, e in zip(batches, expected))
    assert len(set(batches[0].tolist()) | set(batches[1].tolist())) == 14


def test_train_uses_the_batch_order():
    model = Recorder()
    train(model, data(20), Recipe(steps=9, batch_size=7, lr=0.01), seed=5)
    order = BatchOrder(20, 7, seed=5)
    assert len(model.seen) == 9 and all(torch.equal(seen, order.next()) for seen in model.seen)


@pytest.mark.parametrize("batch_size", [0, 20, 50])
def test_full_batch_is_the_whole_set(batch_size):
    order = BatchOrder(20, batch_size, seed=0)
    assert order.full and order.batch_size == 20 and order.next() == slice(None)
    X, _ = data(20)
    assert torch.equal(X[order.next()], X)
    model = Recorder()
    train(model, data(20), Recipe(steps=2, batch_size=batch_size, lr=0.01), seed=0)
    assert all(torch.equal(seen, torch.arange(20)) for seen in model.seen)


def test_restored_order_goes_on_with_the_same_batches():
    straight = BatchOrder(20, 6, seed=3)
    expected = [straight.next() for _ in range(8)]
    first = BatchOrder(20, 6, seed=3)
    got = [first.next() for _ in range(5)]
    state = TrainState()
    first.save(state)
    assert state.cursor == first.cursor and state.generator is not None
    resumed = BatchOrder(20, 6, seed=999, state=state)  # the state wins over the seed
    got += [resumed.next() for _ in range(3)]
    assert all(torch.equal(g, e) for g, e in zip(got, expected))


def test_train_state_records_the_order():
    model = Recorder()
    result = train(model, data(20), Recipe(steps=5, batch_size=6, lr=0.01), seed=2)
    order = BatchOrder(20, 6, seed=2)
    for _ in range(5):
        order.next()
    assert result.state.cursor == order.cursor and torch.equal(result.state.order, order.order)
    assert torch.equal(result.state.generator, order.generator.get_state())


def test_callbacks_come_only_in_hooks():
    steps, reports = [], []
    hooks = TrainHooks(on_step=lambda step, lr: steps.append(step), on_progress=reports.append, report_every=2)
    train(Recorder(), data(20), Recipe(steps=4, batch_size=5, lr=0.01), hooks=hooks)
    assert steps == [0, 1, 2, 3] and [p.step for p in reports] == [2, 4]
    with pytest.raises(TypeError, match="on_progress"):
        train(Recorder(), data(20), Recipe(steps=1), hooks=TrainHooks(), on_progress=reports.append)
    with pytest.raises(TypeError, match="on_step"):
        train(Recorder(), data(20), Recipe(steps=1), on_step=lambda step, lr: None)


def lengths_of(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(1, 16, (n,), generator=torch.Generator().manual_seed(seed))


def test_grouped_batches_cover_a_pass_once_with_items_of_about_one_length():
    n, B, lengths = 1003, 10, lengths_of(1003)
    grouped, plain = BatchOrder(n, B, seed=1, lengths=lengths, groups=8), BatchOrder(n, B, seed=1)
    batches = [grouped.next() for _ in range(n // B)]  # one pass: n // B whole batches, 3 items left over
    seen = torch.cat(batches)
    assert seen.numel() == len(set(seen.tolist())) == 1000
    spread = sum(int(lengths[b].max() - lengths[b].min()) for b in batches) / len(batches)
    plain_spread = sum(int(lengths[b].max() - lengths[b].min()) for b in (plain.next() for _ in range(n // B)))
    assert spread < 2 and plain_spread / (n // B) > 8  # random batches of 10 span most lengths
    assert not torch.equal(torch.stack([lengths[b].max() for b in batches[:20]]).sort().values,
                           torch.stack([lengths[b].max() for b in batches[:20]]))  # batches shuffled, not by length
    again = BatchOrder(n, B, seed=1, lengths=lengths, groups=8)
    assert all(torch.equal(again.next(), b) for b in batches)  # the same seed, the same batches


def test_a_restored_grouped_order_goes_on_with_the_same_batches():
    lengths = lengths_of(50)
    straight = BatchOrder(50, 6, seed=3, lengths=lengths, groups=2)
    expected = [straight.next() for _ in range(20)]
    first = BatchOrder(50, 6, seed=3, lengths=lengths, groups=2)
    got = [first.next() for _ in range(11)]
    state = TrainState()
    first.save(state)
    resumed = BatchOrder(50, 6, seed=999, state=state, lengths=lengths, groups=2)
    got += [resumed.next() for _ in range(9)]
    assert all(torch.equal(g, e) for g, e in zip(got, expected))


class SequenceRecorder(nn.Module):
    """Remembers each training batch; its loss is 1 per real target (so the trainer's weighting shows)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, idx, targets=None):
        if self.training:
            self.seen.append((idx.clone(), targets.clone()))
        return None, self.w * (targets >= 0).float().sum() / (targets >= 0).sum()


def test_grouped_sequence_batches_are_cut_to_their_longest_and_weigh_by_their_characters():
    lengths = lengths_of(200)
    L = int(lengths.max())
    Y = torch.full((200, L), -1)
    for i, n in enumerate(lengths.tolist()):
        Y[i, :n] = 1
    X = torch.arange(200)[:, None].expand(200, L).clone()  # row i holds i: a batch's rows are its indices
    model, losses = SequenceRecorder(), []
    train(model, (X, Y), Recipe(steps=12, batch_size=8, lr=1e-12, length_groups=4), seed=0,
          hooks=TrainHooks(on_progress=lambda p: losses.append(p.loss), report_every=1))
    mean = lengths.double().mean().item()
    for (xb, yb), loss in zip(model.seen, losses):
        rows = xb[:, 0]
        assert xb.shape[1] == yb.shape[1] == int(lengths[rows].max())  # no column of padding alone
        assert loss == pytest.approx(lengths[rows].sum().item() / (8 * mean), rel=1e-6)


def test_length_groups_are_refused_for_a_model_with_batchnorm_before_anything_is_written(tmp_path, small_file):
    from .conftest import call

    code, _, err = call("train", "-i", small_file, "--model", "wavenet-conv", "--length-groups", "4", "--steps", "2",
                        "-o", tmp_path / "run")
    assert code == 1 and "--length-groups needs a model without BatchNorm" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "run.json").exists()
    code, _, err = call("train", "-i", small_file, "--model", "gru", "--length-groups", "4", "--steps", "2",
                        "--n-hidden", "8", "-o", tmp_path / "gru", "--no-plot")
    assert code == 0, err
