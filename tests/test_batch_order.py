"""One batch order for every trainer, and one way to pass callbacks to train()."""

import pytest
import torch
import torch.nn as nn

from makemore.train import BatchOrder, Recipe, TrainHooks, TrainState, train


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
    hooks = TrainHooks(on_step=lambda step, lr: steps.append(step), on_progress=reports.append)
    train(Recorder(), data(20), Recipe(steps=4, batch_size=5, lr=0.01), hooks=hooks, report_every=2)
    assert steps == [0, 1, 2, 3] and [p.step for p in reports] == [2, 4]
    with pytest.raises(TypeError, match="on_progress"):
        train(Recorder(), data(20), Recipe(steps=1), hooks=TrainHooks(), on_progress=reports.append)
    with pytest.raises(TypeError, match="on_step"):
        train(Recorder(), data(20), Recipe(steps=1), on_step=lambda step, lr: None)
