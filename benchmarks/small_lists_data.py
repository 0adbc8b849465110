"""Data for a benchmark of makemore on small lists: built here, kept in a cache folder, never committed.

Targets are lists that no base model saw:
- names: first names of several countries, from the locale providers of the PyPI package Faker (their
  class attributes first_names / first_names_female / first_names_male, read directly, not generated),
  with every name of the base list names.txt removed;
- words: words of languages whose Debian word lists (/usr/share/dict) are not in the word base, drawn
  at several sizes and seeds.
The word base is one large list: the union of other languages' Debian word lists, with every word of
a target language removed.

Everything is written under the cache folder (default ~/.cache/makemore/small_lists), each file
atomically (a temporary file, then os.replace), so an interrupted build never leaves half a list.
Run it to build everything and print the targets:

    .venv/bin/python benchmarks/small_lists_data.py [--names ../shared/data/names.txt] [--cache DIR]
"""

from __future__ import annotations

import argparse
import importlib
import os
import random
import shutil
import subprocess
import sys
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = Path.home() / ".cache" / "makemore" / "small_lists"
DEFAULT_NAMES = REPO.parent / "shared" / "data" / "names.txt"
DICT = Path("/usr/share/dict")

# Faker locales whose first names are Latin-script and still number >= 200 once names.txt's are removed
# (with Faker 40.63.0). Not it_IT (153 left), nl_NL (163), fr_FR (80), pl_PL (57), pt_BR (43): most of
# their names are in names.txt already. Non-Latin locales (ru_RU, el_GR, bg_BG) are left out too: no
# character in common with the base, so a base model could not start from anything.
NAME_LOCALES = ("de_DE", "es_ES", "sv_SE", "tr_TR", "ro_RO", "sk_SK", "fi_FI", "id_ID")
MIN_NAMES = 200
NAME_SEED = 0  # the fixed shuffle of name_targets' lists; target_files reshuffles per seed

# language -> (its file in /usr/share/dict, the Debian package that ships it)
WORD_LISTS = {
    "spanish": ("spanish", "wspanish"),
    "italian": ("italian", "witalian"),
    "swedish": ("swedish", "wswedish"),
    "english": ("american-english", "wamerican"),
    "german": ("ngerman", "wngerman"),
    "french": ("french", "wfrench"),
    "portuguese": ("portuguese", "wportuguese"),
    "dutch": ("dutch", "wdutch"),
}
# Small lists (under 1.3 MB installed) for the targets; wpolish would be 59 MB for one list.
TARGET_LANGUAGES = ("spanish", "italian", "swedish")
BASE_LANGUAGES = ("english", "german", "french", "portuguese", "dutch")
WORD_SIZES = (100, 300, 1000, 5000, 20000)
BASE_SEED = 0

SOURCES = """\
Where the small-list benchmark's data comes from (versions found on Debian 12 "bookworm", 2025):
  names targets: PyPI Faker 40.63.0, faker/providers/person/<locale>/__init__.py, class Provider's
    first_names, first_names_female and first_names_male (union), locales de_DE es_ES sv_SE tr_TR ro_RO
    sk_SK fi_FI id_ID; every name of the base list names.txt removed; a locale is kept if >= 200 remain.
  words targets: Debian wspanish 1.0.30 (/usr/share/dict/spanish), witalian 1.10
    (/usr/share/dict/italian), wswedish 1.4.5-3 (/usr/share/dict/swedish); samples of 100, 300,
    1,000, 5,000 and 20,000 words per seed, the smaller a prefix of the larger.
  words base: the union of Debian wamerican 2020.12.07-2 (/usr/share/dict/american-english),
    wngerman 20161207-11 (/usr/share/dict/ngerman), wfrench 1.2.7-2 (/usr/share/dict/french),
    wportuguese 20220621-1 (/usr/share/dict/portuguese), wdutch 1:2.20.19-2 (/usr/share/dict/dutch),
    less every word of the three target languages' lists.
  Cleaning: NFC, lower-case, letters only (str.isalpha; so no possessives, digits or spaces), each
    once; names may also join letters with hyphens ("hans-jürgen"), and Turkish I/İ lower to ı/i.
"""

Kind = Literal["names", "words"]


@dataclass(frozen=True)
class Target:
    """One list to train on: `n` items at `path`, shuffled (names) or drawn (words) with `seed`."""
    kind: Kind
    name: str
    n: int
    seed: int
    path: Path


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- files

def write_list(path: Path, items: Iterable[str]) -> Path:
    """Write one item a line to path atomically: readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(item + "\n" for item in items), encoding="utf-8")
    os.replace(tmp, path)
    return path


def check_cache(cache: Path) -> Path:
    """The cache as an absolute path; refused inside the repository, where its data could get committed."""
    cache = cache.expanduser().resolve()
    if cache == REPO or REPO in cache.parents:
        raise RuntimeError(f"cache {cache} is inside the repository {REPO}; pick a folder outside it")
    return cache


def read_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError:  # an older list in Latin-1
        return data.decode("latin-1").splitlines()


def shuffled(items: Iterable[str], seed: int | str) -> list[str]:
    """Sorted first, so the result depends on the items and the seed only, not on set order."""
    out = sorted(items)
    random.Random(seed).shuffle(out)
    return out


# ----------------------------------------------------------------------------- names

def faker_person_module(locale: str):
    """faker.providers.person.<locale>, pip-installing Faker into this interpreter when it is missing."""
    try:
        import faker  # noqa: F401
    except ImportError:
        cmd = [sys.executable, "-m", "pip", "install", "-q", "Faker"]
        say(f"installing the PyPI package Faker: {' '.join(cmd)}")
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"pip install Faker failed ({last}); run: {' '.join(cmd)}")
        importlib.invalidate_caches()
    try:
        return importlib.import_module(f"faker.providers.person.{locale}")
    except ImportError:
        raise RuntimeError(f"Faker has no person provider for locale {locale}") from None


def raw_first_names(locale: str) -> set[str]:
    """The union of the provider's first-name attributes as stored: tuples, lists or name -> weight dicts."""
    provider = faker_person_module(locale).Provider
    names: set[str] = set()
    for attr in ("first_names", "first_names_female", "first_names_male"):
        value = getattr(provider, attr, None)
        # some locales (es_CL) make first_names a property that draws from the others: skip it
        if isinstance(value, (tuple, list, dict)):
            names.update(value)
    return names


def clean_name(name: str, locale: str) -> str | None:
    """A lower-cased single-token name, or None: letters, with hyphens only between letter runs."""
    name = unicodedata.normalize("NFC", name.strip())
    if locale.startswith("tr"):  # str.lower turns "İ" into i + a combining dot and "I" into i, not ı
        name = name.replace("İ", "i").replace("I", "ı")
    name = unicodedata.normalize("NFC", name.lower())
    if not name or not all(part.isalpha() for part in name.split("-")):
        return None  # spaces, "Emine.", garbled "N˜zamett˜n"
    return name


def base_names(names_path: Path) -> set[str]:
    if not names_path.is_file():
        raise RuntimeError(f"the base list {names_path} does not exist; pass --names PATH")
    return {unicodedata.normalize("NFC", line.strip().lower()) for line in read_lines(names_path)} - {""}


def name_targets(cache: Path, names_path: Path, locales: Iterable[str] = NAME_LOCALES,
                 seed: int = NAME_SEED) -> dict[str, list[str]]:
    """Language code -> that locale's first names not in names_path, shuffled with seed; each >= 200 names.

    Each list is also written to cache/names/<code>.txt.
    """
    cache = check_cache(cache)
    seen = base_names(names_path)
    out: dict[str, list[str]] = {}
    for locale in locales:
        cleaned = {clean_name(n, locale) for n in raw_first_names(locale)} - {None}
        left = cleaned - seen
        code = locale.split("_")[0]
        if len(left) < MIN_NAMES:
            say(f"names: {locale} left out: {len(left)} of {len(cleaned)} names not in {names_path.name}")
            continue
        if code in out:
            raise RuntimeError(f"two locales share the code {code}; list one of them")
        out[code] = shuffled(left, seed)
        write_list(cache / "names" / f"{code}.txt", out[code])
    return out


# ----------------------------------------------------------------------------- words

def apt_install(package: str) -> None:
    """apt-get install one package, or a one-line RuntimeError saying what to install."""
    hint = f"install the Debian package {package} (apt-get install {package})"
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise RuntimeError(f"{hint}: this needs apt-get as root")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    say(f"installing the Debian package {package}: {' '.join(cmd)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:  # an old or missing package index: update it once and try again
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env)
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"{hint}: apt-get failed ({last})")


def word_file(language: str) -> Path:
    """The language's list in /usr/share/dict, its package installed first when the file is absent."""
    if language not in WORD_LISTS:
        raise RuntimeError(f"no word list for {language}; known: {', '.join(WORD_LISTS)}")
    name, package = WORD_LISTS[language]
    if not (DICT / name).exists():
        apt_install(package)
    if not (DICT / name).exists():
        raise RuntimeError(f"{package} is installed but {DICT / name} is not there")
    return DICT / name


def clean_words(lines: Iterable[str]) -> set[str]:
    """NFC, lower-case, letters only: str.isalpha drops possessives ("cat's"), digits and multi-word lines."""
    words = (unicodedata.normalize("NFC", unicodedata.normalize("NFC", line.strip()).lower()) for line in lines)
    return {w for w in words if w.isalpha()}


_WORDS: dict[str, set[str]] = {}  # language -> its clean words, read once per process


def language_words(language: str) -> set[str]:
    if language not in _WORDS:
        _WORDS[language] = clean_words(read_lines(word_file(language)))
    return _WORDS[language]


def word_targets(cache: Path, sizes: Iterable[int] = WORD_SIZES, seed: int = 1,
                 languages: Iterable[str] = TARGET_LANGUAGES) -> dict[str, dict[int, list[str]]]:
    """Language -> N -> N words drawn with seed; a smaller N is a prefix of a larger one.

    Each list is also written to cache/words/<language>-<N>-seed<seed>.txt.
    """
    cache = check_cache(cache)
    sizes = sorted(set(sizes))
    out: dict[str, dict[int, list[str]]] = {}
    for language in languages:
        words = language_words(language)
        if len(words) < sizes[-1]:
            raise RuntimeError(f"{language} has {len(words):,} clean words, fewer than {sizes[-1]:,}")
        # one draw of the largest size, prefixes for the others: a larger list adds to a smaller one
        drawn = random.Random(f"{seed}-{language}").sample(sorted(words), sizes[-1])
        out[language] = {n: drawn[:n] for n in sizes}
        for n in sizes:
            write_list(cache / "words" / f"{language}-{n}-seed{seed}.txt", out[language][n])
    return out


def word_base(cache: Path, languages: Iterable[str] = BASE_LANGUAGES,
              targets: Iterable[str] = TARGET_LANGUAGES) -> Path:
    """cache/base_words.txt: the union of languages' words less every word of targets' lists, shuffled."""
    cache = check_cache(cache)
    languages, targets = tuple(languages), tuple(targets)
    if both := set(languages) & set(targets):
        raise RuntimeError(f"{', '.join(sorted(both))} cannot be both in the base and a target")
    base: set[str] = set().union(*(language_words(lang) for lang in languages))
    # a word of a target language (e.g. "hotel", also Spanish) would let the base see the target
    base -= set().union(*(language_words(lang) for lang in targets))
    return write_list(cache / "base_words.txt", shuffled(base, BASE_SEED))


# ----------------------------------------------------------------------------- all targets

def target_files(cache: Path, names_path: Path, seeds: Iterable[int] = (1, 2, 3)) -> list[Target]:
    """Every target list written under cache: each names list whole, reshuffled per seed; words per size and seed."""
    cache = check_cache(cache)
    seeds = tuple(seeds)
    targets: list[Target] = []
    for code, names in name_targets(cache, names_path).items():
        for seed in seeds:
            # the same names in a seed's order: the benchmark's split then differs between seeds
            path = write_list(cache / "names" / f"{code}-seed{seed}.txt", shuffled(names, f"{seed}-{code}"))
            targets.append(Target("names", code, len(names), seed, path))
    for seed in seeds:
        for language, by_size in word_targets(cache, seed=seed).items():
            for n in by_size:
                path = cache / "words" / f"{language}-{n}-seed{seed}.txt"
                targets.append(Target("words", language, n, seed, path))
    return targets


def main() -> None:
    p = argparse.ArgumentParser(description="Build the small-list benchmark's data (never committed).")
    p.add_argument("--names", type=Path, default=DEFAULT_NAMES, help="the base list of names (names.txt)")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the lists are written")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = p.parse_args()
    start = time.perf_counter()
    try:
        targets = target_files(args.cache, args.names, args.seeds)
        base = word_base(args.cache)
    except RuntimeError as e:
        sys.exit(f"small_lists_data.py: error: {e}")
    seconds = time.perf_counter() - start
    print(SOURCES)
    # one row per list; the seeds' distinct characters side by side (the word samples differ by seed)
    rows: dict[tuple[str, str, int], list[str]] = {}
    for t in targets:
        chars = len(set(t.path.read_text(encoding="utf-8").replace("\n", "")))
        rows.setdefault((t.kind, t.name, t.n), []).append(str(chars))
    print(f"{'kind':<6} {'name':<8} {'N':>6}  distinct characters (seeds {', '.join(map(str, args.seeds))})")
    for (kind, name, n), chars in rows.items():
        print(f"{kind:<6} {name:<8} {n:>6}  {' / '.join(chars)}")
    words = read_lines(base)
    print(f"base   words    {len(words):>8,} words, {len(set(''.join(words)))} distinct characters: {base}")
    print(f"built in {seconds:.1f} s under {check_cache(args.cache)}")


if __name__ == "__main__":
    main()
