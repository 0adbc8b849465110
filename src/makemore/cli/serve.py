"""The `serve` command: a local web page and JSON API over runs loaded once (the library's `makemore.serve`).

The web stack (FastAPI, uvicorn) is the optional `web` extra: it is imported inside `cmd_serve`
only, so every other command, and `import makemore`, work without it.
"""

from __future__ import annotations

import os

from ..device import pick_device
from ..errors import MakemoreError
from ..serve.catalog import find_runs, load_catalog
from ..serve.config import DEFAULT_HOST, DEFAULT_PORT, ServeConfig, is_loopback
from .common import FMT, add_common, checked, log, set_threads, wrap

WEB_EXTRA = "pip install 'makemore[web]'"


def cmd_serve(args) -> None:
    config = ServeConfig(host=args.host, port=args.port, workers=args.workers)
    find_runs(args.run_dirs)  # a missing or damaged run is refused before anything is loaded or bound
    try:
        # lazy on purpose: FastAPI and uvicorn are the optional `web` extra, needed by this command alone
        import makemore.serve.app as web
    except ImportError as e:
        raise MakemoreError(f"makemore serve needs the web extra ({e.name or 'FastAPI'} is not installed): "
                            f"{WEB_EXTRA}") from None
    if not is_loopback(config.host):
        log(f"warning: serving on {config.host}: anyone who can reach this address can use the page and the API; "
            f"they have no authentication (the default, {DEFAULT_HOST}, is this machine only)")
    set_threads(args.threads)
    catalog = load_catalog(args.run_dirs, os.environ, device=pick_device(args.device))
    for run in catalog.runs.values():
        if run.items is None:
            log(f"note: {run.id}: no percentiles, novel items or bigram counts ({run.missing})")
    sock = web.bind(config)
    names = ", ".join(catalog.runs)
    log(f"makemore serve: {len(catalog.runs)} run(s) ({names if len(names) < 200 else names[:200] + '...'})")
    log(f"open {config.url} in a browser (API: {config.url}api/runs); Ctrl-C stops")
    web.serve(catalog, config, sock)


def add_parsers(sub) -> None:
    """Add `serve` to the subparsers of the `makemore` parser."""
    p = sub.add_parser(
        "serve", help="a local web page and JSON API to generate, score and look inside runs", formatter_class=FMT,
        description=wrap("Load the runs once and serve, until Ctrl-C, a page to choose a run, generate items, score "
                         "items (with each character's probability), watch the next-character distribution as you "
                         "type, and look inside (bigram counts, character embeddings, the results chart), over a "
                         "JSON API the page uses and other programs can call (GET /api/runs, /api/health; POST "
                         "/api/sample, /api/score, /api/next, /api/inside). A folder written by reproduce or "
                         "leaderboard offers all its runs. Runs are fixed at startup: requests name them by id, "
                         "never by path.\n\n"
                         "It listens on 127.0.0.1 (this machine only) unless --host says otherwise; the page has no "
                         f"authentication. Needs the web extra: {WEB_EXTRA}."),
        epilog="examples:\n  makemore serve runs/essay\n  makemore serve runs/wavenet runs/board --port 8080")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="run directories, or folders of runs written by reproduce or leaderboard")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to listen on (default: {DEFAULT_HOST}; any other prints a warning: no authentication)")
    p.add_argument("--port", type=checked("port"), default=DEFAULT_PORT, help=f"TCP port (default: {DEFAULT_PORT})")
    p.add_argument("--workers", type=checked("workers"), default=2,
                   help="model calls at once, in a thread pool; more requests wait their turn (default: 2)")
    add_common(p)
    p.set_defaults(func=cmd_serve)
