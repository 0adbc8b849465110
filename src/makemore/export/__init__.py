"""Export: a trained run that leaves Python — one self-contained HTML page, a JavaScript module, an ONNX graph.

- `bundle`: the run as one portable JSON object (its tensors in base64, its vocabulary, labels, config);
- `web`: the `.html` page and the `.mjs` module, the bundle inlined beside one JavaScript runtime
  (`assets/*.js`: every model's forward pass, the sampler and the scorer, written once for both);
- `onnx`: the model's next-character step as an ONNX graph, with a `.json` that says how to drive it.

Imports the run and the models, never a front end.
"""
