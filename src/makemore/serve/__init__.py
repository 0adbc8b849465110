"""`makemore serve`: a local web page and a JSON API over runs loaded once.

    config    ServeConfig (host, port, worker pool, request limits) and is_loopback; no web stack
    catalog   which runs a server offers, loaded once at startup (run folders, reproduce/leaderboard folders)
    schemas   the JSON requests: fields, types and bounds (bounds.BOUNDS), checked into plain values
    service   what each route computes, with the library's own functions (generate, score_items, ...)
    app       the FastAPI app and the uvicorn server: the only module that needs the `web` extra
    static/   the page (HTML, CSS, JS; charts drawn in SVG by the page itself, nothing fetched from elsewhere)

Only `app` imports FastAPI; the command line imports it inside `makemore serve` alone, so the core
package and every other command work without the extra installed.
"""
