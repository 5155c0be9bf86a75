"""The ``otlp`` receiver: OTLP/HTTP ``POST /v1/metrics``, protobuf or JSON, gzip or deflate.

Thin on purpose: read and decode the body, let ``translate.otlp`` turn it into groups of
families, push each group family by family (OTLP's partial success), answer with an
``ExportMetricsServiceResponse`` in the request's content type. Every status but 200 comes from
``http_errors``: 400 undecodable, 405 another method (aiohttp's router), 413 over the body
limit (after decompression), 415 neither protobuf nor JSON.

The decoded request is submitted to the state layer as one record; translation (which reads and
updates the per-source memory of cumulative streams) happens when the record is applied, in log
order (``state.applier``). A family the store refuses (e.g. its type conflicts with a family
pushed as text) counts its points in ``partial_success.rejected_data_points``; the per-source
memory for that family is not committed, so a later export recomputes the same increments. An
export that would pass the series limit is refused whole with 429 (nothing applied), so that the
SDK retries it later.
"""
from __future__ import annotations

import base64
import json
import time

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest, ExportMetricsServiceResponse)

from ..auth.guard import authorize
from ..errors import DecodeError, GravelError, UnsupportedMediaType
from ..formats.decoding import decode_body
from ..http_errors import error_response
from ..state import OTLP, Record, Replayed, StateBackend
from ..telemetry.counters import Stats
from ..translate.otlp import resource_jobs
from .idempotency import REPLAYED, fingerprint, request_key

PATH = "/v1/metrics"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_ID_KEYS = frozenset({"traceId", "spanId", "trace_id", "span_id"})
_MAX_MESSAGE = 1024


def _hex_ids_to_base64(node) -> None:
    """OTLP JSON writes trace/span ids as hex; protobuf's JSON mapping wants base64."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                try:
                    raw = bytes.fromhex(value)
                except ValueError:
                    raise DecodeError(f"{key} {value!r} is not a hex string") from None
                node[key] = base64.b64encode(raw).decode("ascii")
            elif isinstance(value, (dict, list)):
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, (dict, list)):
                _hex_ids_to_base64(item)


def decode_request(body: bytes, content_type: str) -> ExportMetricsServiceRequest:
    """Bytes → ExportMetricsServiceRequest; raises DecodeError (400) or UnsupportedMediaType."""
    if content_type == PROTOBUF:
        try:
            return ExportMetricsServiceRequest.FromString(body)
        except (ProtobufDecodeError, RuntimeError, ValueError) as exc:
            raise DecodeError(f"invalid OTLP protobuf body: {exc}") from exc
    if content_type == JSON:
        if not body.strip():
            return ExportMetricsServiceRequest()  # an empty body is an empty request, as in protobuf
        try:
            tree = json.loads(body)
            if not isinstance(tree, dict):
                raise DecodeError("invalid OTLP JSON body: expected an object")
            _hex_ids_to_base64(tree)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise DecodeError(f"invalid JSON body: {exc}") from exc
        try:
            return json_format.ParseDict(tree, ExportMetricsServiceRequest(),
                                         ignore_unknown_fields=True)
        except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
            raise DecodeError(f"invalid OTLP JSON body: {exc}") from exc
        except OverflowError as exc:  # an enum written 1e400
            raise DecodeError(f"invalid OTLP JSON body: a number out of range ({exc})") from exc
        except SystemError as exc:  # upb, on a key with a lone surrogate escape ("\ud800")
            cause = exc.__context__
            reason = ("a key with a lone surrogate escape" if isinstance(cause, UnicodeError)
                      else str(cause or exc))
            raise DecodeError(f"invalid OTLP JSON body: {reason}") from exc
    raise UnsupportedMediaType(
        f"unsupported Content-Type {content_type!r}: send {PROTOBUF} or {JSON}")


def encode_response(rejected: int, message: str, content_type: str) -> web.Response:
    response = ExportMetricsServiceResponse()
    if rejected or message:
        response.partial_success.rejected_data_points = rejected
        response.partial_success.error_message = message
    if content_type == JSON:
        return web.Response(status=200, content_type=JSON,
                            text=json_format.MessageToJson(response, indent=None))
    return web.Response(status=200, content_type=PROTOBUF, body=response.SerializeToString())


def _join(errors: list[str]) -> str:
    text = "; ".join(errors)
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def otlp_routes(state: StateBackend, *, max_body: int,
                stats: Stats | None = None) -> list[web.RouteDef]:
    stats = stats if stats is not None else Stats()

    async def export(request: web.Request) -> web.Response:
        now = time.time()
        content_type = request.content_type
        try:
            if content_type not in (PROTOBUF, JSON):
                raise UnsupportedMediaType(
                    f"unsupported Content-Type {content_type!r}: send {PROTOBUF} or {JSON}")
            key = request_key(request)
            raw = await request.read()
            body = decode_body(raw, request.headers.get("Content-Encoding"), max_body)
            message = decode_request(body, content_type)
            authorize(request, resource_jobs(message))  # 403 before anything is applied
            record = Record(OTLP, now, (), "", body, message, key,
                            b"" if key is None else fingerprint(request, body))
            if content_type != PROTOBUF:  # the log keeps every export as protobuf
                record.body = message.SerializeToString()
            result = await state.submit(record)
        except GravelError as exc:
            stats.refused("otlp", exc, 0, (), request.remote, now)
            return error_response(exc, otlp=True)
        if key is not None and type(result) is Replayed:  # applied before: answered the same
            stats.count_request("otlp", "replayed")
            result = result.result
            response = encode_response(result.rejected, _join(result.errors), content_type)
            response.headers.update(REPLAYED)
            return response
        stats.accepted("otlp", result.accepted)
        if result.rejected:
            stats.refused_points("otlp", "refused", result.rejected)
            stats.otlp_partial_success += 1
            for group, exc in result.refusals:
                stats.refusal("otlp", exc, group, request.remote, now)
        return encode_response(result.rejected, _join(result.errors), content_type)

    return [web.post(PATH, export)]
