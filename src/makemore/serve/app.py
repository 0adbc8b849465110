"""The web server: a FastAPI app over already-loaded runs, served by uvicorn. Needs `pip install 'makemore[web]'`.

Why FastAPI + uvicorn: the conventional, well-kept Python pair (FastAPI on Starlette, uvicorn
as the ASGI server), an async event loop that keeps the page responsive while model calls run in a
bounded thread pool, a test client for API tests without a socket, and the OpenAPI document for
free (/api/openapi.json). Requests are read and checked by `schemas` (the library's bounds), not by
pydantic, so every refusal carries the same JSON shape: {"error": {"field", "message", "allowed"}}. The
document declares, for each route, every status it answers with its body (`error_responses`): that shape,
or plain text for the 503 uvicorn answers itself at its connection limit.

Safety: runs are fixed at startup and named by id; bodies are bounded; on a loopback address only
requests whose Host is a loopback name are answered (a web page elsewhere cannot reach the server
through DNS rebinding); POSTs must say application/json (a cross-site form cannot send it without
the browser asking first, and the server never says yes); the page may load nothing from elsewhere
(Content-Security-Policy).
"""

from __future__ import annotations

import asyncio
import errno
import json
import math
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Callable, Sequence

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from .. import __version__
from ..errors import ParameterError
from ..export.bundle import bundle
from ..export.web import module_text, page_text
from .catalog import Catalog
from .config import ServeConfig, is_loopback
from .schemas import INSIDE, NEXT, SAMPLE, SCORE, ApiError, Field, error_json_schema, json_schema, parse_body
from .service import Job, health, list_runs, prepare_inside, prepare_next, prepare_sample, prepare_score

STATIC = Path(__file__).resolve().parent / "static"  # shipped in the package (package data): the page works offline
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
HEADERS = {  # on every response: nothing loaded from elsewhere, no framing, no sniffing
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# GET /api/export's formats: media type, file suffix, the text from a run's bundle
EXPORTS = {"html": ("text/html; charset=utf-8", ".html", page_text), "js": ("text/javascript; charset=utf-8", ".mjs",
                                                                           module_text)}
# POST routes: path, how the request becomes a job, its fields, one line for the OpenAPI document
ROUTES: tuple[tuple[str, Callable[[Catalog, dict], Job], Sequence[Field], str], ...] = (
    ("/api/sample", prepare_sample, SAMPLE, "Generate items with their log-probabilities"),
    ("/api/score", prepare_score, SCORE, "Log-probability, NLL per character, percentile (and explain) per item"),
    ("/api/next", prepare_next, NEXT, "The k most likely next characters after a prefix"),
    ("/api/inside", prepare_inside, INSIDE, "Bigram counts of the training file and the 2D character embeddings"),
)
ERROR_SCHEMA = "Error"  # the component of the OpenAPI document that every JSON error body refers to


def export_responses(config: ServeConfig) -> dict[int, dict[str, Any]]:
    """GET /api/export's answers: the file (a page or a module), or the errors of a GET route plus 404 and 422."""
    responses = error_responses(config, post=False)
    json_error = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}}
    responses[200] = {"description": "the export, as an attachment named after the run",
                      "content": {media.split(";")[0]: {"schema": {"type": "string"}} for media, _, _ in EXPORTS.values()}}
    responses[404] = {"description": 'no run of that id on this server (field "run")', "content": json_error}
    responses[422] = {"description": 'format is neither html nor js (field "format")', "content": json_error}
    return dict(sorted(responses.items()))


def error_responses(config: ServeConfig, post: bool) -> dict[int, dict[str, Any]]:
    """Every status but 200 that a route answers (`post`: a POST route of ROUTES, else GET /api/health or
    /api/runs), with what it means and its body, for the OpenAPI document (FastAPI's `responses=`)."""
    host = ('the Host header is not a loopback name while the server listens on a loopback address '
            '(field "Host")')
    described = {400: host}
    if post:
        described = {
            400: f'the body is not UTF-8, not valid JSON or not a JSON object (field "body"); or {host}',
            404: 'no run of that id on this server (field "run"; GET /api/runs lists them)',
            413: f'the body is larger than {config.max_body_bytes:,} bytes (ServeConfig.max_body_bytes; field "body")',
            415: 'the Content-Type header is not application/json (field "body")',
            422: 'a field is missing, unknown, of the wrong type or outside its bounds, or it conflicts with another: '
                 '"field" names it and "allowed" says what it takes',
        }
    described[405] = "this route does not take that method: GET /api/health and /api/runs, POST the others"
    described[500] = "a bug in makemore: the message says so, and no traceback is sent"
    json_error = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}}
    responses: dict[int, dict[str, Any]] = {status: {"description": text, "content": json_error}
                                            for status, text in sorted(described.items())}
    responses[503] = {  # uvicorn answers it before the app sees the request: its own plain text, not JSON
        "description": f"the server holds as many connections as it takes (ServeConfig.max_connections, "
                       f"{config.max_connections:,} here); the HTTP server answers \"Service Unavailable\" in plain "
                       f"text; try again",
        "content": {"text/plain": {"schema": {"type": "string"}}}}
    return responses


class Json(JSONResponse):
    """JSON with non-finite numbers (a log-probability of -inf) written as null: the JSON standard has none."""

    def render(self, content: Any) -> bytes:
        return json.dumps(_finite(content), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def _finite(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def _error(status: int, message: str, field: str | None = None, allowed: str | None = None) -> Json:
    return Json(ApiError(status, field, message, allowed).payload(), status_code=status)


def create_app(catalog: Catalog, config: ServeConfig = ServeConfig(),
               allowed_hosts: Sequence[str] | None = None) -> FastAPI:
    """The app over `catalog`; `allowed_hosts` (Host header names) defaults to the loopback names when
    config.host is a loopback address, and to any host otherwise."""
    pool = ThreadPoolExecutor(config.workers, thread_name_prefix="makemore-model")  # the bounded worker pool
    hosts = allowed_hosts if allowed_hosts is not None else (LOOPBACK_NAMES if is_loopback(config.host) else None)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="makemore", version=__version__, lifespan=lifespan, default_response_class=Json,
                  docs_url=None, redoc_url=None, openapi_url="/api/openapi.json",  # the docs pages load a CDN: off
                  description="Generate, score and look inside makemore runs. Every error: "
                              '{"error": {"field", "message", "allowed"}}, but a 503 (plain text).')
    _add_guards(app, hosts)
    _complete_document(app)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/health", summary="The server is up: its version and how many runs it serves",
             responses=error_responses(config, post=False))
    async def get_health():
        return health(catalog)

    @app.get("/api/runs", summary="Every run served (id, model, params, metrics, labels...) and results tables",
             responses=error_responses(config, post=False))
    async def get_runs():
        return list_runs(catalog)

    @app.get("/api/export", summary="A run as one self-contained HTML page or an ES module, to download "
                                     "(`makemore export`)", responses=export_responses(config))
    async def get_export(run: str = "", format: str = "html"):
        if not run:
            raise ApiError(422, "run", "run is needed: the id of the run to export (GET /api/runs lists them)",
                           "the id of a run this server offers")
        served = catalog.runs.get(run)
        if served is None:
            raise ApiError(404, "run", f"no run {run[:100]!r} on this server; GET /api/runs lists them",
                           "the id of a run this server offers")
        if format not in EXPORTS:
            raise ApiError(422, "format", f"format must be html or js, got {format[:20]!r}", "html or js")
        media, suffix, make = EXPORTS[format]
        text = await asyncio.get_running_loop().run_in_executor(pool, lambda: make(bundle(served.run)))
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", served.id).strip("-.") or "run"
        return Response(text, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}{suffix}"'})

    for path, prepare, schema, summary in ROUTES:
        body = {"required": True, "content": {"application/json": {"schema": json_schema(schema)}}}
        app.add_api_route(path, _endpoint(catalog, config, pool, prepare), methods=["POST"], summary=summary,
                          responses=error_responses(config, post=True), openapi_extra={"requestBody": body})
    return app


def _complete_document(app: FastAPI) -> None:
    """The error body (`ApiError.payload()`) as the component ERROR_SCHEMA of the app's OpenAPI document, and each
    POST route's request body as `json_schema` writes it: FastAPI's own pass reads every bound as a float, and
    a seed's (2**64 - 1) is then 1.8446744073709552e+19, a number the server refuses."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()  # FastAPI's document, kept in app.openapi_schema
            document.setdefault("components", {}).setdefault("schemas", {})[ERROR_SCHEMA] = error_json_schema()
            for path, _, schema, _ in ROUTES:
                body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
                body["schema"] = json_schema(schema)
        return app.openapi_schema

    app.openapi = openapi


def _endpoint(catalog: Catalog, config: ServeConfig, pool: ThreadPoolExecutor,
              prepare: Callable[[Catalog, dict], Job]):
    async def endpoint(request: Request):
        raw = await read_body(request, config.max_body_bytes)
        job = prepare(catalog, parse_body(raw, request.headers.get("content-type")))  # checked here, at once
        return await asyncio.get_running_loop().run_in_executor(pool, job)  # the model call: in the pool

    return endpoint


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is known to pass `limit` bytes: never read whole into memory first."""
    too_large = ApiError(413, "body", f"the body is larger than {limit:,} bytes", f"at most {limit:,} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _add_guards(app: FastAPI, hosts: Sequence[str] | None) -> None:
    """The Host check, the security headers, and every error as JSON (never a traceback)."""

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if hosts is not None and _hostname(request.headers.get("host", "")) not in hosts:
            response = _error(400, "this server answers only requests addressed to this machine by a loopback name",
                              "Host", ", ".join(hosts))
        else:
            response = await call_next(request)
        response.headers.update(HEADERS)
        return response

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        return Json(e.payload(), status_code=e.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException):
        message = {404: f"no route {request.url.path[:200]}; the API: GET /api/runs, /api/health, /api/export; POST /api/sample, "
                        f"/api/score, /api/next, /api/inside",
                   405: f"{request.method} is not allowed on {request.url.path[:200]}"}.get(e.status_code, str(e.detail))
        return Json(ApiError(e.status_code, None, message).payload(), status_code=e.status_code, headers=e.headers)

    @app.exception_handler(Exception)
    async def bug(request: Request, e: Exception):  # no traceback in a response, whatever happened
        return _error(500, "internal error: a bug in makemore, please report it with the request that caused it")


def _hostname(host: str) -> str:
    """The name in a Host header, without its port: "[::1]:8000" -> "[::1]", "localhost:8000" -> "localhost"."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[:host.find("]") + 1]
    return host.split(":", 1)[0]


def bind(config: ServeConfig) -> socket.socket:
    """A listening socket at config.host:config.port; before serving, a ParameterError naming the ServeConfig
    parameter at fault: `host` when it is no address of this machine, `port` when the port is taken or not allowed."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(config.host, config.port, type=socket.SOCK_STREAM)[0]
    except OSError as e:  # socket.gaierror: a name that does not resolve
        raise _host_error(config, e) from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRNOTAVAIL:
            raise _host_error(config, e) from None
        raise ParameterError("port", f"{config.port} cannot be listened on at host {config.host} ({e.strerror or e}); "
                                     f"choose another port or host", related=("port", "host")) from None
    return sock


def _host_error(config: ServeConfig, e: OSError) -> ParameterError:
    return ParameterError("host", f"{config.host[:100]!r} is not an address of this machine ({e.strerror or e}); "
                                  f"choose another host", related=("host",))


def build_server(catalog: Catalog, config: ServeConfig = ServeConfig()) -> uvicorn.Server:
    """A uvicorn server for the app; `.run(sockets=[bind(config)])` serves until Ctrl-C (or `.should_exit`)."""
    app = create_app(catalog, config)
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                         limit_concurrency=config.max_connections, timeout_keep_alive=5))


def serve(catalog: Catalog, config: ServeConfig, sock: socket.socket) -> None:
    """Serve on the bound socket until interrupted."""
    build_server(catalog, config).run(sockets=[sock])
