import makemore as mm


def test_python_api_end_to_end(tmp_path, small_file):
    items = mm.read_items(small_file)
    recipe = mm.get_recipe("mlp")
    recipe.steps = 50
    meta = mm.run(items, mm.RunSpec(model="mlp", recipe=recipe), tmp_path / "mlp")
    assert meta["status"] == "complete" and meta["metrics"]["val_nll"] > 0
    model, vocab, loaded_meta = mm.load_run(tmp_path / "mlp")
    names = mm.sample_items(model, vocab, n=5, max_len=30, seed=0)
    assert len(names) == 5 and loaded_meta["metrics"] == meta["metrics"]
    assert set(mm.__all__) >= {"read_items", "build_model", "train", "load_run", "sample_items", "run", "resume"}


def test_every_api_name_resolves():
    for name in mm.__all__:
        assert getattr(mm, name) is not None, name


def test_the_readme_studies_from_python(small_file):
    # the README's Python API section: the essay's studies as data, the same text as the commands print
    items = mm.read_items(small_file)
    report = mm.diagnose(items, model="mlp", init="kaiming", steps=20)
    assert report.before.loss > report.after.loss  # 20 steps of SGD lower the loss on the measured batch
    assert report.before.layers and "initial loss" in mm.format_diagnose(report)
    claims = mm.measure_claims(items)
    assert claims and all(isinstance(c.holds, bool) for c in claims)
    assert mm.format_claims(claims).splitlines()[0].startswith("claim")
