"""Generation: what a trained model is asked, below the `Run` that offers it.

- `request`: `GenerateRequest`, every generation control in one object, checked once;
- `sampler`: batched sampling (temperature, top-k/top-p, prefix, length bounds, novelty, labels);
- `constraints`: suffix / contains by exact rejection;
- `search`: the exactly most likely items, by best-first search;
- `scoring`: log-probabilities of items, per-character explanations, next-character tables;
- `classify`: p(label | item) by Bayes' rule.

Imports data, models and training (evaluation), never studies or a front end.
"""
