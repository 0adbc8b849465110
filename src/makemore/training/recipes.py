"""Named training recipes. `fast` is the default of each model; `essay` is the lecture's own.

A recipe says how a model is trained, never what it is: every preset trains the
architecture and parameter count of the essay.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from ..errors import MakemoreError
from ..models import get_spec
from .loop import Recipe

# The essay's recipe for the neural models: batch 32, plain SGD, 200k steps, lr 0.1 -> 0.01.
ESSAY_SGD = Recipe(steps=200_000, batch_size=32, optimizer="sgd", lr=0.1, schedule="step")

PRESETS: dict[str, dict[str, Recipe]] = {
    "bigram-counts": {
        "fast": Recipe(steps=1),  # counting: the recipe is unused
        "essay": Recipe(steps=1),
    },
    "ngram": {
        "fast": Recipe(steps=1),  # counting: the recipe is unused
        "essay": Recipe(steps=1),
    },
    "bigram-nn": {
        # The essay's: full-batch gradient descent, 200 steps at lr 50.
        "fast": Recipe(steps=200, batch_size=0, optimizer="sgd", lr=50.0),
        "essay": Recipe(steps=200, batch_size=0, optimizer="sgd", lr=50.0),
    },
    # The "fast" recipes: AdamW, bigger batches, a cosine decay, weight decay and soft targets, found by
    # a measured search (benchmarks/README.md); each beats the essay's figure on seeds 42, 1 and 2.
    "mlp": {
        # soft targets: 5,438 distinct contexts stand behind 182,625 windows; val 2.118 -> 2.086 at equal steps
        "fast": Recipe(steps=2500, batch_size=1024, optimizer="adamw", lr=0.04, schedule="cosine", min_lr_ratio=0.01,
                       weight_decay=0.05, warmup_steps=200, soft_targets=True),
        "essay": ESSAY_SGD,
    },
    "mlp-bn": {
        "fast": Recipe(steps=2500, batch_size=1024, optimizer="adamw", lr=0.02, schedule="cosine", min_lr_ratio=0.01,
                       weight_decay=0.1, warmup_steps=100, soft_targets=True),
        "essay": ESSAY_SGD,
    },
    "mlp-deep": {  # not tuned: the init study's model, with a plain AdamW recipe (no soft targets)
        "fast": Recipe(steps=20_000, batch_size=1024, optimizer="adamw", lr=0.004, schedule="cosine", min_lr_ratio=0.01,
                       weight_decay=0.1),
        "essay": ESSAY_SGD,
    },
    "wavenet": {
        # long schedules overfit (30k steps: train 1.70, val 2.02); soft targets: val 1.988 -> 1.974 at 6k steps
        "fast": Recipe(steps=4000, batch_size=256, optimizer="adamw", lr=0.006, schedule="cosine", min_lr_ratio=0.01,
                       weight_decay=0.1, soft_targets=True),
        # the leaderboard's wavenet-16 (16 characters of context, 4 levels of 106): with the fast recipe, one thread,
        # val 1.9893; lr 0.004: 1.9801, and with wd 0.2: 1.9795 (kept); lr 0.003 / 0.005: 1.9871 / 1.9818; 3,000 /
        # 3,500 / 5,000 steps: 1.9929 / 1.9881 / 1.9867 (benchmarks/config_search.py, seed 42, one thread)
        "long-context": Recipe(steps=4000, batch_size=256, optimizer="adamw", lr=0.004, schedule="cosine",
                               min_lr_ratio=0.01, weight_decay=0.2, soft_targets=True),
        "essay": ESSAY_SGD,
    },
    # The sequence models (whole items, batch_size counts items; the essay has no recipe for them). Searched on
    # names.txt, seed 42, on an H200 (val NLL per character, the windowed models' measure); the README's leaderboard
    # measured them again on 2 CPU cores: within 0.0005, except the small transformer (1.967 here, 1.971 there):
    "transformer": {
        # 204,544 params, dropout 0.1 (its config's default): val 1.926 (dropout 0.15: 1.926; batch 64 x 12k steps at
        # lr 2e-3, dropout 0.2: 1.996; no dropout: 1.988). Also the small config n_embd=44, n_layer=3 (74,580
        # params, dropout 0.1): val 1.967. Batches grouped by length pad less, so a step costs less and more steps
        # fit: 6,000 steps val 1.9286 -> 1.9349 grouped; 8,000 grouped steps 1.9278. The small config grouped:
        # 1.9709 -> 1.9914, so its leaderboard entry keeps random batches (leaderboard.EXTRA_ENTRIES). With
        # layers.Dropout's masks and one thread each (as the leaderboard trains): 8,000 steps 1.9308, 9,000 steps
        # 1.9243, kept; the small config at 6,000 steps 1.9731, at 7,000 steps 1.9682, kept
        "fast": Recipe(steps=9000, batch_size=256, optimizer="adamw", lr=0.006, schedule="cosine", warmup_steps=200,
                       min_lr_ratio=0.01, weight_decay=0.1, length_groups=8),
        "random-batches": Recipe(steps=7000, batch_size=256, optimizer="adamw", lr=0.006, schedule="cosine",
                                 warmup_steps=200, min_lr_ratio=0.01, weight_decay=0.1),
    },
    "gru": {  # 66,555 params: val 1.956 (batch 64 x 12k steps at lr 3e-3: 1.952; dropout 0.1: 1.959); batches grouped
        # by length (less padding per step): 1.9555 -> 1.9538
        "fast": Recipe(steps=6000, batch_size=128, optimizer="adamw", lr=0.005, schedule="cosine", warmup_steps=200,
                       min_lr_ratio=0.01, weight_decay=0.1, length_groups=8),
    },
    "lstm": {  # 87,291 params: val 1.950 (batch 64 x 12k steps at lr 3e-3: 1.944; dropout 0.1: 1.955); batches grouped
        # by length (less padding per step): 1.9498 -> 1.9474. The same recipe trains leaderboard.LARGE_LSTM
        # (2 layers of 256, dropout 0.3, 864,731 params) to val 1.8993; 4,500 steps: 1.9106
        "fast": Recipe(steps=3000, batch_size=256, optimizer="adamw", lr=0.006, schedule="cosine", warmup_steps=200,
                       min_lr_ratio=0.01, weight_decay=0.1, length_groups=8),
    },
    "rnn": {  # 25,083 params; not searched: the gru's recipe (grouped by length: 1.9915 -> 2.0060, so not grouped)
        "fast": Recipe(steps=6000, batch_size=128, optimizer="adamw", lr=0.005, schedule="cosine", warmup_steps=200,
                       min_lr_ratio=0.01, weight_decay=0.1),
    },
    "wavenet-conv": {  # 76,579 params: val 1.983 (batch 32: 2.010); no soft targets for whole items; BatchNorm: no
        # length groups (train.check_recipe_fits)
        "fast": Recipe(steps=4000, batch_size=64, optimizer="adamw", lr=0.006, schedule="cosine", min_lr_ratio=0.01,
                       weight_decay=0.1),
    },
}

# A run that starts from another (`--init-from`) trains by its model's `finetune` preset unless told otherwise:
# the fast recipe at this share of its learning rate, with no warm-up. A big list's learning rate wipes out
# what the base knew; at 0.3, fine-tuned runs gain most on 300-item lists (benchmarks/small_lists.py).
FINETUNE_LR = 0.3
for _presets in PRESETS.values():
    _fast = _presets["fast"]
    _presets["finetune"] = replace(_fast, lr=_fast.lr * FINETUNE_LR, warmup_steps=0) if _fast.steps > 1 else _fast


def get_recipe(model: str, preset: str = "fast") -> Recipe:
    """A fresh copy of a named preset (callers may change fields without touching the table)."""
    presets = PRESETS.get(model, {})
    if preset not in presets:
        known = ", ".join(presets) or "none"
        raise MakemoreError(f"model {model!r} has no recipe {preset!r}; its recipes: {known}")
    return replace(presets[preset])


# ----------------------------------------------------------------------------- recipes sized to the list

# The fast recipes were searched on names.txt's training split: 25,626 items, 182,625 characters with their end
# tokens ("examples" below: the windows a window model trains on; a sequence model predicts as many characters).
REFERENCE_EXAMPLES = 182_625
SMALL_PATIENCE = 10  # val checks without a new best before a sized run stops (about five passes over the data)
MAX_SIZED_WEIGHT_DECAY = 1.0  # a 300-item list asks for wd ~1 (benchmarks/small_lists.py); more only slows learning
MIN_WINDOW_BATCH, MIN_ITEM_BATCH = 32, 16  # the smallest sized batch: of windows, of whole items (sequence models)
MIN_SIZED_STEPS = 400  # however small the list: fewer steps do not get a model from its initial weights to counts
MAX_PASSES = 50
# a full-batch recipe's steps on a list smaller than names.txt, times its own: bigram-nn's 200 steps at lr 50 end
# 0.007 above bigram-counts on 5,000 Spanish words, 1,000 end 0.006 below (with patience, as every sized recipe)
FULL_BATCH_STEPS = 5  # a sized run's step budget, in passes over its training split; patience ends most runs far sooner


@dataclass(frozen=True)
class ListSize:
    """What a recipe is sized by: the training split's items and characters (each item's end token counted)."""

    items: int  # training items
    examples: int  # characters to predict in them, one end token per item included

    @classmethod
    def of(cls, train_items: list[str]) -> "ListSize":
        return cls(len(train_items), sum(len(it) + 1 for it in train_items))

    @property
    def scale(self) -> float:
        """This list's share of names.txt's training split, at most 1: the recipes are left alone at 1."""
        return min(1.0, self.examples / REFERENCE_EXAMPLES)


def sized(recipe: Recipe, size: ListSize, layout: str, keep: frozenset[str] = frozenset()) -> Recipe:
    """A recipe fitted to a list smaller than names.txt; the recipe itself for one as large or larger.

    Why each change (r = sqrt(scale), scale = the list's share of names.txt's training characters):
    - batches shrink with r (at least 32 windows or 16 items): a 240-item list in batches of 256 is one step
      per pass, too few steps to learn anything before the whole list is memorised;
    - weight decay grows with 1 / r (at most 1.0), warm-up shrinks with r: a small list needs the pull
      towards small weights that a large one's variety gives for free;
    - val is checked every half pass, and `SMALL_PATIENCE` checks without a new best end the run (its best
      weights are the ones kept): a small list is memorised within tens of passes, and the checks must
      come before that, where names.txt's checks come every 400 steps;
    - steps: at most `MAX_PASSES` passes (at least `MIN_SIZED_STEPS`), at most the recipe's own: the step
      budget is a ceiling, patience decides. A full-batch recipe (bigram-nn's) keeps its batch and steps.
    On a list at least as large as names.txt's training split the recipe is returned unchanged (with its
    ten val checks), so names.txt's figures are the fast recipes' own. Fields named in `keep` (the caller's
    own values) are left as they are."""
    recipe = replace(recipe)
    s = size.scale

    def put(name: str, value) -> None:
        if name not in keep:
            setattr(recipe, name, value)

    if s < 1.0 and recipe.steps > 1:
        r = math.sqrt(s)
        if recipe.batch_size == 0:  # full batch (bigram-nn's): every step is a pass, and cheap; more of them
            put("steps", recipe.steps * FULL_BATCH_STEPS)
            check_every = max(1, recipe.steps // 100)
        else:
            examples = size.items if layout == "sequence" else size.examples
            floor = MIN_ITEM_BATCH if layout == "sequence" else MIN_WINDOW_BATCH
            put("batch_size", min(recipe.batch_size, max(floor, round(recipe.batch_size * r))))
            per_pass = examples / max(1, recipe.batch_size)
            put("steps", min(recipe.steps, max(MIN_SIZED_STEPS, math.ceil(MAX_PASSES * per_pass))))
            check_every = max(1, min(recipe.steps // 10, round(per_pass / 2)))  # every half pass
        if recipe.weight_decay > 0:
            put("weight_decay", round(min(MAX_SIZED_WEIGHT_DECAY, recipe.weight_decay / r), 4))
        put("warmup_steps", min(recipe.warmup_steps, round(recipe.warmup_steps * r)))
        if recipe.eval_interval == 0:
            put("eval_interval", check_every)
        if recipe.patience == 0:
            put("patience", SMALL_PATIENCE)
    if recipe.eval_interval == 0 and recipe.steps >= 10 and "eval_interval" not in keep:
        recipe.eval_interval = recipe.steps // 10  # ten val checks: the best weights, and resume points
    return recipe


def recipe_for(model: str, preset: str, train_items: list[str], overrides: dict[str, Any]) -> Recipe:
    """The recipe a run of `model` trains by on these training items: the preset with the caller's values
    (`overrides`, which win), sized to the list (`sized`), checked."""
    recipe = get_recipe(model, preset)
    for name, value in overrides.items():
        setattr(recipe, name, value)
    recipe = sized(recipe, ListSize.of(train_items), get_spec(model).layout, keep=frozenset(overrides))
    recipe.check()
    return recipe
