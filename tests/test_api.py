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
