"""The JSON requests of the API: each field's type and bound, checked into plain values or an ApiError.

The numeric bounds are the library's (`bounds.BOUNDS`): the API refuses `temperature: 0` with the
words the CLI and `generate` use. What a shared server adds is a cap on each request's size (at most
1,000 items or keys, 10,000 avoid or exclude entries, strings of at most 1,000 characters: the
`serve.*` bounds), so that no one request holds a worker for long. Every refusal names its field and
what the field allows; the library's own refusals (`ParameterError`) name their parameter, which is
the request's field of the same name (`avoid[2]`, `keys[3]`, `blend`, `novel`). Nothing here needs the
web stack, so the rules are tested without a server.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from ..bounds import BOUNDS, MAX_REQUEST_CHARS, MAX_REQUEST_ITEMS
from ..errors import ParameterError
from ..generation.request import MAX_EXPANSIONS

MAX_MESSAGE_CHARS = 500  # an error message is cut there (a huge number in it is cut short)
MAX_REQUEST_BLEND = 1_000  # most labels one request's blend may name (far more than any run has)


class ApiError(Exception):
    """A request the API refuses: HTTP status, the field at fault, what went wrong and what is allowed."""

    def __init__(self, status: int, field: str | None, message: str, allowed: str | None = None):
        super().__init__(message)
        self.status = status  # 400 malformed, 404 unknown run or route, 413 too large, 415 not JSON, 422 a bad value
        self.field = field  # the request field at fault ("n", "items[3]", "body"), or None
        self.message = message[:MAX_MESSAGE_CHARS]  # one line, naming the field
        self.allowed = allowed  # what the field takes, in words ("a whole number between 1 and 1,000")

    def payload(self) -> dict[str, Any]:
        return {"error": {"field": self.field, "message": self.message, "allowed": self.allowed}}


def error_json_schema() -> dict[str, Any]:
    """The JSON Schema of every error body (`ApiError.payload()`), for the OpenAPI document."""
    text_or_null = ["string", "null"]
    return {"type": "object", "required": ["error"], "additionalProperties": False, "properties": {"error": {
        "type": "object", "required": ["field", "message", "allowed"], "additionalProperties": False, "properties": {
            "field": {"type": text_or_null, "description": 'the request field at fault ("n", "items[3]", "body", '
                                                           '"Host"), or null when no one field is'},
            "message": {"type": "string", "maxLength": MAX_MESSAGE_CHARS,
                        "description": "what went wrong, in one line (naming the field when there is one)"},
            "allowed": {"type": text_or_null, "description": "what the field takes, in words, or null"}}}}}


@dataclass(frozen=True)
class Field:
    """One field of a request body."""

    name: str  # as it is spelled in the JSON
    kind: str  # "int", "float", "bool", "str" (at most MAX_REQUEST_CHARS), "strs" (1 to MAX_REQUEST_ITEMS of such),
    # "list" (such strings, as many as its bound allows, none included), "blend" ({label: weight}), "run" (an id)
    default: Any = None  # the value when the field is absent (or null, where nullable)
    bound: str | None = None  # key of its bound in bounds.BOUNDS (numbers; a "list": how many entries)
    nullable: bool = False  # null means "the default" (top_k: all characters; seed: a fresh one)
    nonempty: bool = False  # a "list" whose entries need a character (the library refuses "", naming the entry)
    required: bool = False  # absent is an error
    doc: str = ""  # one line for the OpenAPI schema

    def allowed(self) -> str:
        """What the field takes, in words."""
        if self.kind in ("int", "float"):
            what = "a whole number" if self.kind == "int" else "a number"
            rule = BOUNDS[self.bound].describe().removeprefix("must be ") if self.bound else ""
            return f"{what} {rule}".strip() + (" or null" if self.nullable else "")
        if self.kind == "list":
            least = "1 to" if self.nonempty else "at most"
            return (f"a list of at most {self.max_entries:,} strings of {least} {MAX_REQUEST_CHARS:,} characters "
                    f"each ([]: none)")
        return {"bool": "true or false", "str": f"a string of at most {MAX_REQUEST_CHARS:,} characters",
                "strs": f"a list of 1 to {MAX_REQUEST_ITEMS:,} strings of at most {MAX_REQUEST_CHARS:,} characters each",
                "blend": f"an object of at most {MAX_REQUEST_BLEND:,} labels of the run, each with a weight of at "
                         f"least 0 (a number), the weights adding up to more than 0; or null (no blend)",
                "run": "the id of a run this server offers (GET /api/runs)"}[self.kind]

    @property
    def max_entries(self) -> int:
        """A list's most entries (its bound's upper end)."""
        return int(BOUNDS[self.bound].high)


RUN = Field("run", "run", required=True, doc="the run's id, from GET /api/runs")
SAMPLE = (
    RUN,
    Field("n", "int", 10, "serve.n", doc="how many items"),
    Field("temperature", "float", 1.0, "temperature", doc="logits are divided by it: below 1 safer, above 1 wilder"),
    Field("top_k", "int", None, "top_k", nullable=True, doc="draw only among the k most likely next characters"),
    Field("top_p", "float", None, "top_p", nullable=True, doc="nucleus: only the most likely characters adding up to p"),
    Field("prefix", "str", "", doc="every item starts with it"),
    Field("suffix", "str", "", doc="every item ends with it: the same distribution given that it does (\"\": no rule)"),
    Field("contains", "str", "", doc="every item contains it, anywhere, the prefix included (\"\": no rule)"),
    Field("min_len", "int", 0, "serve.min_len", doc="shortest item in characters, prefix included"),
    Field("max_len", "int", None, "serve.max_len", nullable=True,
          doc="longest item (an item reaching it is ended there); default: twice the longest training item"),
    Field("novel", "bool", False, doc="only items absent from the training file and from each other"),
    Field("seed", "int", None, "seed", nullable=True, doc="the same seed gives the same items; default: a fresh one"),
    Field("most_likely", "bool", False, doc="the n most probable items instead of random ones, highest first (exact "
                                            "search; temperature, top_k, top_p and seed do not apply)"),
    Field("max_expansions", "int", None, "serve.max_expansions", nullable=True,
          doc="most_likely only: prefixes the search may expand before it stops with the best found (exact: false); "
              f"default: {MAX_EXPANSIONS:,}"),
    Field("label", "str", "", doc="a labelled run: items of this label (\"\": each item's label drawn by its share "
                                  "of the training items; most_likely needs one, or a blend)"),
    Field("blend", "blend", None, nullable=True,
          doc="a labelled run: {label: weight}; every next character is drawn from the weighted mixture of those "
              "labels' distributions (weights scaled to add up to 1), and log_prob is the blend's; not with label "
              "(null or {}: no blend)"),
    Field("avoid", "list", (), "serve.avoid.count", nonempty=True,
          doc="no item contains any of these strings, anywhere (case-folded); each entry at least one character"),
    Field("exclude", "list", (), "serve.exclude.count", doc="items never to return (as the run reads them)"),
    Field("unique", "bool", False, doc="no item twice in one answer (novel implies it)"),
    Field("keys", "list", (), "serve.keys.count", nonempty=True,
          doc="one item per key, in this order, each with its \"key\": the same key, seed and settings give the same "
              "item whatever other keys are asked with it; n is then unused (and seed defaults to 0); each key "
              "given once, not with most_likely ([]: no keys)"),
    Field("min_log_prob", "float", None, "min_log_prob", nullable=True,
          doc="only items whose log-probability under the model is at least this (null: no threshold)"),
    Field("max_nll_per_char", "float", None, "max_nll_per_char", nullable=True,
          doc="only items whose NLL per character, -log_prob / (length + 1), is at most this (null: no threshold)"),
)
SCORE = (
    RUN,
    Field("items", "strs", required=True, doc="the items to score"),
    Field("explain", "bool", False, doc="also each character's probability given its context"),
    Field("label", "str", "", doc="a labelled run: score under this label (\"\": under the whole run, the sum over "
                                  "labels of p(label) p(item | label); explain needs one, or a blend)"),
    Field("blend", "blend", None, nullable=True,
          doc="a labelled run: score under the weighted mixture of these labels, {label: weight}, as /api/sample "
              "draws with the same blend; not with label (null or {}: no blend)"),
)
NEXT = (
    RUN,
    Field("prefix", "str", "", doc="the item so far (may be empty)"),
    Field("k", "int", 10, "serve.k", doc="how many of the most likely next characters"),
    Field("label", "str", "", doc="a labelled run: whose next character (required for one, unless a blend is given)"),
    Field("blend", "blend", None, nullable=True,
          doc="a labelled run: the next character under the weighted mixture of these labels, {label: weight}; not "
              "with label (null or {}: no blend)"),
)
INSIDE = (RUN,)


def parse_body(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """A request body as a JSON object, or a 415 / 400 ApiError."""
    if (content_type or "").split(";")[0].strip().lower() != "application/json":
        raise ApiError(415, "body", f"send the body as JSON with the header Content-Type: application/json "
                                    f"(got {(content_type or 'none')[:100]})", "application/json")
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "body", "the body is not UTF-8 text", "a JSON object") from None
    except (ValueError, RecursionError) as e:  # ValueError: JSONDecodeError, or an integer of over 4,300 digits
        message = e.msg if isinstance(e, json.JSONDecodeError) else "nested too deeply or a number too long"
        raise ApiError(400, "body", f"the body is not valid JSON ({message})", "a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(400, "body", f"the body must be a JSON object, got {json_type(body)}", "a JSON object")
    return body


def read_fields(body: dict[str, Any], schema: Sequence[Field], run_ids: Iterable[str]) -> dict[str, Any]:
    """Each field's checked value (defaults filled in); the first problem found as an ApiError."""
    names = [f.name for f in schema]
    for key in body:
        if key not in names:
            raise ApiError(422, str(key)[:100], f"unknown field {str(key)[:100]!r}; this request takes: "
                                                f"{', '.join(names)}", ", ".join(names))
    values = {}
    for f in schema:
        if f.name not in body or (body[f.name] is None and f.nullable):
            if f.required:
                raise ApiError(422, f.name, f"{f.name} is required", f.allowed())
            values[f.name] = f.default
        else:
            values[f.name] = check_field(f, body[f.name], run_ids)
    return values


def check_field(f: Field, value: Any, run_ids: Iterable[str]) -> Any:
    if f.kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ApiError(422, f.name, f"{f.name} must be {f.allowed()}, got {json_type(value)}", f.allowed())
        try:
            return BOUNDS[f.bound].check(f.name, value)
        except ParameterError as e:  # an integer of hundreds of digits too: the bound says how many
            raise ApiError(422, f.name, str(e), f.allowed()) from None
    if f.kind == "bool":
        if not isinstance(value, bool):
            raise ApiError(422, f.name, f"{f.name} must be true or false, got {json_type(value)}", f.allowed())
        return value
    if f.kind == "strs":
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_REQUEST_ITEMS:
            got = f"{len(value):,} items" if isinstance(value, list) else json_type(value)
            raise ApiError(422, f.name, f"{f.name} must be {f.allowed()}, got {got}", f.allowed())
        return [check_string(f"{f.name}[{i}]", v, f.allowed()) for i, v in enumerate(value)]
    if f.kind == "list":
        if not isinstance(value, list):
            raise ApiError(422, f.name, f"{f.name} must be {f.allowed()}, got {json_type(value)}", f.allowed())
        if len(value) > f.max_entries:
            raise ApiError(422, f.name, f"{f.name} holds {len(value):,} entries; at most {f.max_entries:,} are allowed",
                           f.allowed())
        return tuple(check_string(f"{f.name}[{i}]", v, f.allowed()) for i, v in enumerate(value))
    if f.kind == "blend":
        return read_blend(f, value)
    text = check_string(f.name, value, f.allowed())
    if f.kind == "run" and text not in run_ids:
        known = list(run_ids)
        shown = ", ".join(known[:50]) + (f" and {len(known) - 50} more" if len(known) > 50 else "")
        raise ApiError(404, f.name, f"no run {text[:100]!r} on this server; runs: {shown}", f"one of: {shown}")
    return text


def check_string(name: str, value: Any, allowed: str) -> str:
    if not isinstance(value, str):
        raise ApiError(422, name, f"{name} must be a string, got {json_type(value)}", allowed)
    if len(value) > MAX_REQUEST_CHARS:
        raise ApiError(422, name, f"{name} is {len(value):,} characters long; at most {MAX_REQUEST_CHARS:,} are "
                                  f"allowed", allowed)
    return value


def read_blend(f: Field, value: Any) -> tuple[tuple[str, float], ...]:
    """A blend object as (label, weight) pairs, in the order given; {} is no blend. Whether the labels are the run's,
    and whether the weights make a blend (at least 0, not all 0), the library says (`Run.blend_numbers`)."""
    if not isinstance(value, dict):
        raise ApiError(422, f.name, f"{f.name} must be an object {{label: weight}}, got {json_type(value)}", f.allowed())
    if len(value) > MAX_REQUEST_BLEND:
        raise ApiError(422, f.name, f"{f.name} names {len(value):,} labels; at most {MAX_REQUEST_BLEND:,} are allowed",
                       f.allowed())
    pairs = []
    for label, weight in value.items():
        if len(label) > MAX_REQUEST_CHARS:
            raise ApiError(422, f.name, f"{f.name} names a label {len(label):,} characters long; at most "
                                        f"{MAX_REQUEST_CHARS:,} are allowed", f.allowed())
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise ApiError(422, f.name, f"{f.name} weight of {label[:100]!r} must be a number, got {json_type(weight)}",
                           f.allowed())
        try:
            weight = float(weight)
        except OverflowError:  # an integer of hundreds of digits
            weight = math.inf
        if not math.isfinite(weight):
            raise ApiError(422, f.name, f"{f.name} weight of {label[:100]!r} must be a finite number", f.allowed())
        pairs.append((label, weight))
    return tuple(pairs)


def json_type(value: Any) -> str:
    """A value's JSON type for messages ("a string", "a list"), never the value itself: it may be huge."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"[:60]
    if isinstance(value, str):
        return f"the string {value[:40]!r}" + ("..." if len(value) > 40 else "")
    return "a list" if isinstance(value, list) else "an object"


def from_parameter_error(e: ParameterError, schema: Sequence[Field]) -> ApiError:
    """A library ParameterError (min_len above max_len, too few novel items...) as a 422 of the field it names: the
    library's parameters are the request's fields, of the same names (`avoid[2]`: the third of the avoid field)."""
    base = re.sub(r"\[\d+\]$", "", e.parameter)
    allowed = next((f.allowed() for f in schema if f.name == base), None)
    return ApiError(422, e.parameter, f"{e.parameter} {e.problem}", allowed)


def json_schema(schema: Sequence[Field]) -> dict[str, Any]:
    """The request body's JSON Schema, for the OpenAPI document (/docs)."""
    types = {"int": "integer", "float": "number", "bool": "boolean", "str": "string", "run": "string"}
    props = {}
    for f in schema:
        if f.kind in ("strs", "list"):
            prop = {"type": "array", "minItems": 1 if f.kind == "strs" else 0,
                    "maxItems": MAX_REQUEST_ITEMS if f.kind == "strs" else f.max_entries,
                    "items": {"type": "string", **({"minLength": 1} if f.nonempty else {}),
                              "maxLength": MAX_REQUEST_CHARS}}
        elif f.kind == "blend":
            prop = {"type": ["object", "null"], "maxProperties": MAX_REQUEST_BLEND,
                    "propertyNames": {"maxLength": MAX_REQUEST_CHARS},
                    "additionalProperties": {"type": "number", "minimum": 0}}
        else:
            prop = {"type": [types[f.kind], "null"] if f.nullable else types[f.kind]}
        if f.kind == "str":
            prop["maxLength"] = MAX_REQUEST_CHARS
        if f.bound and f.kind != "list":  # a list's bound is its length: maxItems
            b = BOUNDS[f.bound]
            if b.low is not None:
                prop["exclusiveMinimum" if b.low_open else "minimum"] = b.low
            if b.high is not None:
                prop["exclusiveMaximum" if b.high_open else "maximum"] = b.high
        if f.default is not None:
            prop["default"] = list(f.default) if isinstance(f.default, tuple) else f.default
        props[f.name] = {**prop, "description": f.doc or f.allowed()}
    return {"type": "object", "properties": props, "required": [f.name for f in schema if f.required],
            "additionalProperties": False}
