"""What only a CUDA GPU shows: skipped without one (CI has none; benchmarks/cuda_check.sh runs this file on one).

The first run of makemore on a GPU found two faults that every CPU test had passed: the window helpers
(soft targets, the pooled full batch) built tensors on the CPU for data on the GPU, so the essay's windowed
models could not train there; and cuDNN's recurrent layers ran in TensorFloat-32, so a cached step and the
whole item read again drew different items from the same seed (about 1e-3 apart in log-probability).
"""

import pytest
import torch

from makemore.data.items import Vocab, next_char_distributions, unique_rows
from makemore.device import full_float32
from makemore.training.evaluation import distinct_pairs, evaluate
from makemore.models import build_model
from makemore.training.recipes import get_recipe
from .generating import generate
from makemore.training.loop import pooled_batch, train

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def cudnn_flags():
    """Put back the process-wide cuDNN precision flags that a test sets."""
    cudnn = torch.backends.cudnn
    new_api = hasattr(cudnn, "rnn") and hasattr(cudnn.rnn, "fp32_precision")
    saved = (cudnn.rnn.fp32_precision, cudnn.conv.fp32_precision) if new_api else cudnn.allow_tf32
    yield new_api
    if new_api:
        cudnn.rnn.fp32_precision, cudnn.conv.fp32_precision = saved
    else:
        cudnn.allow_tf32 = saved


def test_full_float32_turns_off_tf32_for_cudnn_on_cuda_only(cudnn_flags):  # flags only: runs without a GPU
    cudnn = torch.backends.cudnn
    if cudnn_flags:
        cudnn.rnn.fp32_precision = cudnn.conv.fp32_precision = "tf32"
    else:
        cudnn.allow_tf32 = True
    full_float32(torch.device("cpu"))
    assert (cudnn.rnn.fp32_precision == "tf32") if cudnn_flags else cudnn.allow_tf32
    full_float32(torch.device("cuda"))
    if cudnn_flags:
        assert (cudnn.rnn.fp32_precision, cudnn.conv.fp32_precision) == ("ieee", "ieee")
    else:
        assert not cudnn.allow_tf32


def windows(n: int = 5000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 6, (n, 3), generator=g, dtype=torch.int8), torch.randint(0, 6, (n,), generator=g)


@cuda
def test_window_helpers_give_on_the_gpu_what_they_give_on_the_cpu():
    X, Y = windows()
    Xg, Yg = X.cuda(), Y.cuda()
    for cpu_out, gpu_out in ((unique_rows(X), unique_rows(Xg)),
                             (next_char_distributions(X, Y), next_char_distributions(Xg, Yg)),
                             (pooled_batch(X, Y), pooled_batch(Xg, Yg))):  # outputs on the GPU, equal to the CPU's
        for a, b in zip(cpu_out, gpu_out):
            assert b.device.type == "cuda"
            assert torch.allclose(a.double(), b.cpu().double(), atol=1e-6, rtol=0)
    cpu_pairs, gpu_pairs = distinct_pairs(X, Y), distinct_pairs(Xg, Yg)
    for field in ("contexts", "context_of", "targets", "counts", "starts"):
        assert torch.equal(getattr(cpu_pairs, field), getattr(gpu_pairs, field).cpu()), field


@cuda
@pytest.mark.parametrize("name", ["bigram-nn", "mlp-bn"])  # the pooled full batch; soft targets
def test_windowed_models_train_and_evaluate_on_the_gpu(name):
    X, Y = windows()
    torch.manual_seed(0)
    model = build_model(name, vocab_size=6, **({"block_size": 3} if name != "bigram-nn" else {})).cuda()
    data = (X[:, -1:] if name == "bigram-nn" else X, Y)
    recipe = get_recipe(name)
    recipe.steps = 5
    train(model, (data[0].cuda(), data[1].cuda()), recipe, seed=0)
    assert evaluate(model, (data[0].cuda(), data[1].cuda())) < 2.0  # log 6 = 1.79 for uniform guesses


@cuda
@pytest.mark.parametrize("name", ["rnn", "gru", "lstm", "transformer", "wavenet-conv"])
def test_cached_and_uncached_sampling_give_the_same_items_on_the_gpu(name):
    full_float32(torch.device("cuda"))  # what load_run does for a run loaded onto a GPU
    torch.manual_seed(0)
    model = build_model(name, vocab_size=6).cuda().eval()
    vocab = Vocab(tuple("abcde"))
    cached = generate(model, vocab, 2000, max_len=20, seed=3, batch_size=1024)
    plain = generate(model, vocab, 2000, max_len=20, seed=3, batch_size=1024, cache=False)
    assert [s.item for s in cached] == [s.item for s in plain]
    assert [s.log_prob for s in cached] == pytest.approx([s.log_prob for s in plain], abs=1e-4)
