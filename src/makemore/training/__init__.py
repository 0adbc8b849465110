"""Training: recipes, the loop, evaluation, run folders, locking, several runs at once, torchrun.

- `recipes`: named training recipes and each model's presets;
- `loop`: the trainer (knows no model: any registered one), its stop/resume state, callbacks;
- `evaluation`: mean NLL of a split;
- `pipeline`: one run end to end (data -> model -> train -> metrics -> run folder);
- `run_folder`: run folders on disk (safetensors + JSON, atomic writes, careful loading, resume points);
- `lock`: one writer per run folder;
- `parallel_runs`: several runs at once in spawned worker processes (`--jobs`);
- `torchrun`: one run over several processes (DDP).

Imports data and models, never generation, studies or a front end.
"""
