"""The authenticator in front of an endpoint's routes, and the job check of each write.

Which credentials a route asks for is decided here, from the component that serves it:
- ``/-/healthy``, ``/-/ready``: never any;
- pushgateway push and DELETE: its authenticator, then the grouping key's job (bare ``/metrics``:
  job ``""``); the admin wipe: a principal with no ``jobs`` restriction;
- otlp: its authenticator; the handler checks the job of each resource (``authorize``) once the
  body is decoded, before anything is translated or applied;
- prometheus (``/metrics`` and whatever the exporter serves): the exporter's authenticator.
A refusal is answered here, before the handler runs: nothing is read, applied or marked.
"""
from __future__ import annotations

from functools import lru_cache

from aiohttp import web

from ..errors import AuthError, Forbidden, GroupingKeyError, Unauthenticated
from ..http_errors import error_response
from ..receivers.grouping import parse_grouping_key
from ..telemetry.counters import outcome_of
from . import Authenticator, Principal

PRINCIPAL = "otelgravel.principal"

_grouping_key = lru_cache(maxsize=65536)(parse_grouping_key)


def push_job(request: web.BaseRequest) -> str | None:
    """The job a push or DELETE writes; None when the path is not a grouping key (the handler 400s)."""
    tail = request.raw_path.split("?", 1)[0][len("/metrics"):]
    try:
        return dict(_grouping_key(tail)).get("job", "")
    except GroupingKeyError:
        return None


def authorize(request: web.BaseRequest, jobs) -> None:
    """Forbidden (403) naming the first job the request's principal may not write."""
    principal: Principal | None = request.get(PRINCIPAL)
    if principal is None or principal.unrestricted:
        return
    for job in sorted(jobs):
        if not principal.may_write(job):
            raise Forbidden(f"403: user {principal.name!r} may not write job {job!r}")


def _needs(component: str, route: web.RouteDef):
    """What a route asks of a principal beyond being authenticated: 'job', 'admin' or None."""
    if component == "pushgateway":
        if route.path.startswith("/api/v1/admin/"):
            return "admin"
        if route.path.startswith("/metrics") and route.method in ("PUT", "POST", "DELETE"):
            return "job"
    return None


def guard_routes(component: str, routes: list[web.RouteDef],
                 authenticator: Authenticator | None, stats=None) -> list[web.RouteDef]:
    """``stats`` (telemetry.counters.Stats) counts a receiver's refusals under its outcomes
    (``unauthorized``, ``forbidden``, ``unavailable``) and in ``auth_failures``."""
    if authenticator is None:
        return routes
    return [route if route.path.startswith("/-/") else
            web.RouteDef(route.method, route.path,
                         _guarded(route.handler, authenticator, _needs(component, route),
                                  component, stats),
                         route.kwargs)
            for route in routes]


def _guarded(handler, authenticator: Authenticator, needs, component: str, stats):
    challenge = authenticator.challenge

    async def guarded(request: web.BaseRequest) -> web.StreamResponse:
        try:
            principal = await authenticator.authenticate(request)
            if principal is None:
                raise Unauthenticated(challenge)
            if needs == "job" and not principal.unrestricted:
                job = push_job(request)
                if job is not None and not principal.may_write(job):
                    raise Forbidden(f"403: user {principal.name!r} may not write job {job!r}")
            elif needs == "admin" and not principal.unrestricted:
                raise Forbidden(f"403: user {principal.name!r} is limited to some jobs; "
                                "the admin API needs a user without a jobs restriction")
        except AuthError as exc:
            if stats is not None and component in ("pushgateway", "otlp"):  # receivers' counts
                outcome = outcome_of(exc)
                stats.count_request(component, outcome)
                stats.auth_failed(component, outcome)
            return error_response(exc)
        request[PRINCIPAL] = principal
        return await handler(request)

    return guarded
