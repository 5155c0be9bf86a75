"""basicauth and bearertokenauth: parsing, remembered credentials, reload, shedding, jobs."""
import asyncio
import base64

import bcrypt
import pytest
from multidict import CIMultiDict

from otelgravel.auth import Principal, jobs_pattern
from otelgravel.auth.basicauth import BasicAuth, BcryptChecker, parse_htpasswd
from otelgravel.auth.bearertoken import BearerTokenAuth
from otelgravel.errors import AuthBusy

HASH = bcrypt.hashpw(b"right", bcrypt.gensalt(4))


class Request:
    """What an authenticator reads of a request: its headers and peer address."""

    def __init__(self, authorization=None):
        self.headers = CIMultiDict({"Authorization": authorization} if authorization else {})
        self.remote = "127.0.0.1"


def basic(user, password):
    return Request("Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())


class CountingChecker(BcryptChecker):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.runs = 0

    async def check(self, key, password, hashed):
        if key not in self._pending:
            self.runs += 1
        return await super().check(key, password, hashed)


@pytest.mark.parametrize("text,error", [
    ("u:" + HASH.decode(), None),
    ("# comment\n\n  u:" + HASH.decode() + "  \n", None),
    ("u:" + HASH.decode().replace("$2b$", "$2y$"), None),
    ("u:" + HASH.decode().replace("$2b$", "$2a$"), None),
    ("u:" + HASH.decode() + "\nu:" + HASH.decode(), "line 2: user 'u' appears twice"),
    ("u", "line 1: expected user:bcrypt-hash"),
    (":" + HASH.decode(), "line 1: expected user:bcrypt-hash"),
    ("u:{SHA}abc=", "line 1: the hash of user 'u' is not bcrypt"),
    ("u:$apr1$abc$def", "line 1: the hash of user 'u' is not bcrypt"),
    ("u:" + HASH.decode()[:-1], "line 1: the hash of user 'u' is not bcrypt"),
])
def test_parse_htpasswd(text, error):
    if error is None:
        assert list(parse_htpasswd(text)) == ["u"]
    else:
        with pytest.raises(ValueError, match=error):
            parse_htpasswd(text)


def run(coro):
    return asyncio.run(coro)


def test_a_verified_credential_is_remembered_and_a_wrong_one_is_not():
    checker = CountingChecker()
    auth = BasicAuth("basicauth/t", {"u": HASH}, {}, checker=checker)

    async def go():
        assert (await auth.authenticate(basic("u", "right"))).name == "u"
        assert (await auth.authenticate(basic("u", "right"))).name == "u"
        assert checker.runs == 1
        assert await auth.authenticate(basic("u", "wrong")) is None
        assert await auth.authenticate(basic("u", "wrong")) is None
        assert checker.runs == 3
        assert await auth.authenticate(basic("u", HASH.decode())) is None  # the hash as the password
        assert await auth.authenticate(basic("nobody", "right")) is None   # a dummy check, same cost
        assert checker.runs == 5
        assert auth.failures.total == 4
    run(go())


@pytest.mark.parametrize("header", [None, "Basic", "Basic !!", "Basic " + base64.b64encode(b"nocolon").decode(),
                                    "Bearer x", "Basic " + base64.b64encode(b"\xff:x").decode()])
def test_malformed_headers_are_refused_without_a_bcrypt_check(header):
    checker = CountingChecker()
    auth = BasicAuth("basicauth/t", {"u": HASH}, {}, checker=checker)
    assert run(auth.authenticate(Request(header))) is None
    assert checker.runs == 0


def test_reload_forgets_a_changed_password_and_keeps_the_old_file_when_the_new_one_fails():
    files = [{"u": HASH}]
    auth = BasicAuth("basicauth/t", files[0], {}, load=lambda: files[-1]
                     if isinstance(files[-1], dict) else (_ for _ in ()).throw(ValueError("bad")))

    async def go():
        assert await auth.authenticate(basic("u", "right")) is not None
        files.append("broken")
        auth.reload()
        assert await auth.authenticate(basic("u", "right")) is not None  # kept
        files.append({"u": bcrypt.hashpw(b"new", bcrypt.gensalt(4))})
        auth.reload()
        assert await auth.authenticate(basic("u", "right")) is None
        assert await auth.authenticate(basic("u", "new")) is not None
    run(go())


def test_identical_checks_in_flight_share_one_bcrypt_run_and_too_many_are_shed():
    slow = bcrypt.hashpw(b"right", bcrypt.gensalt(8))
    checker = CountingChecker(workers=1, max_pending=4)
    auth = BasicAuth("basicauth/t", {"u": slow}, {}, checker=checker)

    async def go():
        same = await asyncio.gather(*(auth.authenticate(basic("u", "right")) for _ in range(20)))
        assert all(p is not None for p in same) and checker.runs == 1
        results = await asyncio.gather(*(auth.authenticate(basic("u", f"wrong{i}")) for i in range(10)),
                                       return_exceptions=True)
        assert sum(isinstance(r, AuthBusy) for r in results) == 6
        assert sum(r is None for r in results) == 4
        assert await auth.authenticate(basic("u", "right")) is not None  # remembered: never shed
    run(go())


def test_jobs_restrict_writes():
    auth = BasicAuth("basicauth/t", {"u": HASH, "admin": HASH},
                     {"u": jobs_pattern(["checkout(-.*)?"])})
    user = run(auth.authenticate(basic("u", "right")))
    admin = run(auth.authenticate(basic("admin", "right")))
    assert [user.may_write(j) for j in ("checkout", "checkout-eu", "checkout-", "billing",
                                        "xcheckout", "checkoutx", "")] == \
        [True, True, True, False, False, False, False]
    assert not user.unrestricted and admin.unrestricted and admin.may_write("billing")
    assert not Principal("none", jobs_pattern([])).may_write("anything")


def test_bearer_tokens():
    auth = BearerTokenAuth("bearertokenauth/p", ["one", "two"], jobs_pattern([".*"]))
    assert run(auth.authenticate(Request("Bearer two"))).name == "bearertokenauth/p"
    assert run(auth.authenticate(Request("bearer one"))) is not None
    for header in (None, "Bearer", "Bearer three", "Basic b25lOg==", "Bearer one1"):
        assert run(auth.authenticate(Request(header))) is None
