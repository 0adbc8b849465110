"""Names you can ship: the cost of --avoid, the stability and speed of --keys, and what --blend draws.

    python benchmarks/ship.py                      # about 3 minutes on 2 cores (the first time: training too)
    python benchmarks/ship.py --keys 20000 --repeats 5

The model is the default wavenet on names.txt (`makemore train -i names --model wavenet`), trained once
into makemore's cache folder as the base `--init-from names` uses (`training.bases`).

1. --avoid. The blocklist is better-profanity's English word list (PyPI package better-profanity 0.7.0,
   better_profanity/profanity_wordlist.txt, 916 entries; downloaded with pip into the cache folder, never
   committed). 1,000 items with the list against 1,000 without it, through `Run.generate` (the automaton
   compiled on each call, as the command line does), median of --repeats alternating runs; how many of the
   plain items the list would have rejected; and a substring check that no avoided item holds an entry.
2. --keys. 100,000 keys ("entity-0", ...): items per second, then the keys shuffled and drawn again at another
   batch size (and another chunking of the cache), and every key's item compared.
3. --blend. A labelled wavenet on Faker's en_US + en_GB first names, girls (first_names_female) and boys
   (first_names_male), trained by `makemore train -i girls=F -i boys=M --model wavenet`; 2,000 items of each
   label and 2,000 of the blend girls=0.5,boys=0.5, each classified by the run (`Run.classify`, Bayes' rule):
   the share of each label among the items' most likely labels, and the mean p(girls).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import small_lists_data as data  # noqa: E402

import makemore as mm  # noqa: E402
from makemore.data.builtin import cache_dir_from, locate_input  # noqa: E402
from makemore.data.items import TextOptions, read_items  # noqa: E402
from makemore.generation.avoid import AvoidList  # noqa: E402
from makemore.generation.sampler import generate  # noqa: E402
from makemore.training.bases import base_folder, ensure_base  # noqa: E402

PROFANITY = ("better-profanity", "0.7.0", "better_profanity/profanity_wordlist.txt")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def profanity_list(cache: Path) -> list[str]:
    """better-profanity's word list, downloaded once with pip into the cache folder."""
    name, version, member = PROFANITY
    folder = cache / "ship"
    target = folder / "profanity_wordlist.txt"
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(folder), f"{name}=={version}"]
        say(f"downloading {name} {version}: {' '.join(cmd)}")
        subprocess.run(cmd, check=True)
        wheel = next(folder.glob("better_profanity-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            target.write_bytes(z.read(member))
    return [line.strip() for line in target.read_text(encoding="utf-8").splitlines() if line.strip()]


def names_wavenet(cache: Path) -> mm.Run:
    folder = base_folder(cache, "names", "wavenet")
    items = read_items(locate_input("names", os.environ), TextOptions())
    say(f"the names wavenet: {folder}")
    ensure_base(folder, "wavenet", items, dataset={"name": "names", "items": len(items)})
    return mm.Run.load(folder, "cpu")


def avoid_phase(run: mm.Run, entries: list[str], repeats: int) -> None:
    compiled = AvoidList.build([run.text(e) for e in entries], run.vocab)
    start = time.perf_counter()
    for _ in range(repeats):
        AvoidList.build([run.text(e) for e in entries], run.vocab)
    compile_ms = (time.perf_counter() - start) / repeats * 1000
    usable = sum(set(e.casefold()) <= {c.casefold() for c in run.vocab.chars} for e in compiled.entries)
    times: dict[str, list[float]] = {"plain": [], "avoid": []}
    outputs: dict[str, list[str]] = {}
    for r in range(repeats):
        for kind in (("plain", "avoid") if r % 2 == 0 else ("avoid", "plain")):
            request = mm.GenerateRequest(n=1000, seed=r, avoid=tuple(entries) if kind == "avoid" else ())
            start = time.perf_counter()
            out = run.generate(request)
            times[kind].append(time.perf_counter() - start)
            outputs[kind] = [s.item for s in out.items]
    plain, avoided = statistics.median(times["plain"]), statistics.median(times["avoid"])
    would = sum(compiled.found_in(it) is not None for it in outputs["plain"])
    leaked = sum(any(e.casefold() in it.casefold() for e in entries) for it in outputs["avoid"])
    print(f"## --avoid: {len(entries):,} entries ({usable:,} can match the run's characters), compiled in "
          f"{compile_ms:.1f} ms")
    print()
    print("| 1,000 items | median seconds | ratio |")
    print("|---|---:|---:|")
    print(f"| without --avoid | {plain:.3f} | 1.00 |")
    print(f"| with --avoid | {avoided:.3f} | {avoided / plain:.2f} |")
    print()
    print(f"- plain items that contain an entry (the list would reject them): {would:,} of 1,000")
    print(f"- avoided items that contain an entry (substring check): {leaked}")
    print(f"- target: with --avoid at most 1.5x without: {'met' if avoided <= 1.5 * plain else 'MISSED'} "
          f"({avoided / plain:.2f}x)")
    print()


def keys_phase(run: mm.Run, n_keys: int) -> None:
    keys = [f"entity-{i}" for i in range(n_keys)]
    request = run.resolve(mm.GenerateRequest(keys=tuple(keys)))
    start = time.perf_counter()
    first = generate(run.model, run.vocab, request)
    seconds = time.perf_counter() - start
    shuffled = keys[:]
    random.Random(1).shuffle(shuffled)
    again = generate(run.model, run.vocab, run.resolve(mm.GenerateRequest(keys=tuple(shuffled))), batch_size=1000)
    before = {s.key: s.item for s in first}
    changed = sum(before[s.key] != s.item for s in again)
    unique = run.resolve(mm.GenerateRequest(keys=tuple(keys), unique=True))
    start = time.perf_counter()
    distinct = generate(run.model, run.vocab, unique)
    unique_seconds = time.perf_counter() - start
    moved = sum(before[s.key] != s.item for s in distinct)
    print(f"## --keys: {n_keys:,} keys")
    print()
    print("| | seconds | items per second |")
    print("|---|---:|---:|")
    print(f"| --keys | {seconds:.2f} | {n_keys / seconds:,.0f} |")
    print(f"| --keys --unique | {unique_seconds:.2f} | {n_keys / unique_seconds:,.0f} |")
    print()
    print(f"- keys shuffled and drawn at batch 1,000 instead of 16,384: {changed} of {n_keys:,} items changed")
    print(f"- distinct items without --unique: {len(set(before.values())):,}; with --unique every item differs, "
          f"{moved:,} keys moved to a later attempt")
    print()


def labelled_run(cache: Path) -> Path:
    """The labelled wavenet on Faker's en_US + en_GB girls' and boys' first names, trained once into the cache."""
    folder = cache / "ship"
    folder.mkdir(parents=True, exist_ok=True)
    girls, boys = set(), set()
    for locale in ("en_US", "en_GB"):
        provider = data.faker_person_module(locale).Provider
        girls |= set(provider.first_names_female)
        boys |= set(provider.first_names_male)
    files = {}
    for label, names in (("girls", girls), ("boys", boys)):
        files[label] = folder / f"{label}.txt"
        files[label].write_text("".join(f"{n.lower()}\n" for n in sorted(names)), encoding="utf-8")
    run_dir = folder / "girls-boys-wavenet"
    if not (run_dir / "run.json").exists():
        cmd = [sys.executable, "-m", "makemore", "train", "-i", f"girls={files['girls']}", "-i",
               f"boys={files['boys']}", "--model", "wavenet", "-o", str(run_dir), "--seed", "1"]
        say(" ".join(cmd))
        subprocess.run(cmd, check=True)
    return run_dir


def blend_phase(cache: Path) -> None:
    run_dir = labelled_run(cache)
    run = mm.Run.load(run_dir, "cpu")
    rows = []
    for name, request in (("girls", mm.GenerateRequest(n=2000, seed=1, label="girls")),
                          ("blend girls=0.5,boys=0.5", mm.GenerateRequest(n=2000, seed=1,
                                                                          blend=(("girls", 0.5), ("boys", 0.5)))),
                          ("boys", mm.GenerateRequest(n=2000, seed=1, label="boys"))):
        items = [s.item for s in run.generate(request).items]
        classified = run.classify(items)
        share = sum(c.label == "girls" for c in classified) / len(items)
        mean = statistics.fmean(c.probs["girls"] for c in classified)
        rows.append((name, share, mean))
    girls, boys = (run.labels.counts[i] for i in range(2))
    print(f"## --blend: a labelled wavenet on {girls:,} girls' and {boys:,} boys' names (Faker en_US, en_GB)")
    print()
    print("| 2,000 items drawn as | classified girls | classified boys | mean p(girls) |")
    print("|---|---:|---:|---:|")
    for name, share, mean in rows:
        print(f"| {name} | {share:.1%} | {1 - share:.1%} | {mean:.3f} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=100_000, help="keys for the --keys phase (default: 100,000)")
    parser.add_argument("--repeats", type=int, default=9, help="timed runs of each --avoid case (default: 9)")
    args = parser.parse_args()
    cache = cache_dir_from(os.environ)
    run = names_wavenet(cache)
    avoid_phase(run, profanity_list(cache), args.repeats)
    keys_phase(run, args.keys)
    blend_phase(cache)


if __name__ == "__main__":
    main()
