"""SPEC 6 config: every problem names its key; files that do not load are config errors at start;
``${env:NAME}`` / ``${NAME}`` in values."""
from pathlib import Path

import bcrypt
import pytest
import yaml

from otelgravel.auth.security import Security
from otelgravel.config import build_config, expand_env, load_config
from otelgravel.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
PIPELINE = {"metrics": {"receivers": ["pushgateway"], "processors": ["gravel"],
                        "exporters": ["prometheus"]}}


def doc(extensions=None, listed=None, pushgateway=None, prometheus=None):
    d = {"receivers": {"pushgateway": pushgateway or {}}, "processors": {"gravel": {}},
         "exporters": {"prometheus": prometheus or {}},
         "service": {"pipelines": PIPELINE}}
    if extensions is not None:
        d["extensions"] = extensions
    if listed is not None:
        d["service"]["extensions"] = listed
    return d


BASIC = {"basicauth/fn": {"htpasswd": {"inline": "u:" + "$2b$04$" + "a" * 53}}}
TLS = {"cert_file": "/c.pem", "key_file": "/k.pem"}

PROBLEMS = [  # (document, key path named, message fragment)
    (doc(BASIC, ["basicauth/fn"], {"auth": {"authenticator": "oauth2/x"}}),
     "receivers::pushgateway::auth::authenticator", 'unknown authenticator "oauth2/x"'),
    (doc(BASIC, [], {"auth": {"authenticator": "basicauth/fn"}}),
     "receivers::pushgateway::auth::authenticator", "not among the running extensions"),
    (doc(BASIC, ["basicauth/fn"], {"auth": {"authenticator": "basicauth/other"}}),
     "receivers::pushgateway::auth::authenticator", "not among the running extensions"),
    (doc(BASIC, ["basicauth/nope"]), "service::extensions", '"basicauth/nope" which is not configured'),
    (doc({"oidc/x": {}}, []), "extensions::oidc/x", "unknown extension"),
    (doc({"basicauth/fn": {"htpasswd": {}}}, ["basicauth/fn"]), "extensions::basicauth/fn::htpasswd",
     "needs a file or inline"),
    (doc({"basicauth/fn": {"htpasswd": {"file": "/x"}, "jobs": {"u": ["("]}}}, ["basicauth/fn"]),
     "extensions::basicauth/fn::jobs::u", "invalid regular expression"),
    (doc({"basicauth/fn": {"htpasswd": {"file": "/x"}, "jobs": ["a"]}}, ["basicauth/fn"]),
     "extensions::basicauth/fn::jobs", "must map a user"),
    (doc({"bearertokenauth/p": {}}, ["bearertokenauth/p"]), "extensions::bearertokenauth/p",
     "exactly one of token or filename"),
    (doc({"bearertokenauth/p": {"token": "t", "filename": "/f"}}, ["bearertokenauth/p"]),
     "extensions::bearertokenauth/p", "exactly one of token or filename"),
    (doc({"bearertokenauth/p": {"token": "t", "jobs": "a"}}, ["bearertokenauth/p"]),
     "extensions::bearertokenauth/p::jobs", "list of regular expressions"),
    (doc(pushgateway={"tls": {"cert_file": "/c.pem"}}), "receivers::pushgateway::tls::key_file",
     "is required"),
    (doc(pushgateway={"tls": {**TLS, "min_version": "1.1"}}),
     "receivers::pushgateway::tls::min_version", '"1.2" or "1.3"'),
    (doc(pushgateway={"tls": {**TLS, "ciphers": "x"}}), "receivers::pushgateway::tls::ciphers",
     "unknown key"),
    (doc(pushgateway={"tls": TLS}, prometheus={"tls": {**TLS, "cert_file": "/other.pem"}}),
     "exporters::prometheus::tls", "must be the same as receivers::pushgateway::tls or absent"),
]


@pytest.mark.parametrize("document,key,fragment", PROBLEMS)
def test_config_problems_name_the_key(document, key, fragment):
    with pytest.raises(ConfigError) as err:
        build_config(document)
    assert any(p.startswith(f"{key}: ") and fragment in p for p in err.value.problems), err.value.problems


def test_shared_endpoint_tls_same_or_absent_is_fine():
    for prometheus in ({"tls": dict(TLS)}, {}):
        config = build_config(doc(pushgateway={"tls": TLS}, prometheus=prometheus))
        assert config.pushgateway.tls.cert_file == "/c.pem"


def test_secrets_are_not_echoed_in_config_errors():
    with pytest.raises(ConfigError) as err:
        build_config(doc({"bearertokenauth/p": {"token": ["hunter2"]}}, ["bearertokenauth/p"]))
    assert "hunter2" not in str(err.value)


ENV = [  # (value, environment, expanded or the error fragment)
    ("${env:TOKEN}", {"TOKEN": "abc"}, "abc"),
    ("${TOKEN}", {"TOKEN": "abc"}, "abc"),
    ("Bearer ${env:TOKEN}!", {"TOKEN": "abc"}, "Bearer abc!"),
    ("${env:A}${B}", {"A": "1", "B": "2"}, "12"),
    ("${env:MISSING:-fallback}", {}, "fallback"),
    ("$${env:TOKEN}", {"TOKEN": "abc"}, "${env:TOKEN}"),
    ("$2b$10$abc", {}, "$2b$10$abc"),  # bcrypt hashes are left alone
    ("${env:MISSING}", {}, "environment variable MISSING is not set"),
    ("${file:/etc/x}", {}, "unsupported reference"),
]


@pytest.mark.parametrize("value,environ,expected", ENV)
def test_env_references(value, environ, expected):
    node = {"extensions": {"bearertokenauth/p": {"token": value}}}
    try:
        assert expand_env(node, environ)["extensions"]["bearertokenauth/p"]["token"] == expected
    except ConfigError as exc:
        assert exc.problems == [f"extensions::bearertokenauth/p::token: {expected}"] or \
            expected in exc.problems[0] and exc.problems[0].startswith("extensions::bearertokenauth/p::token: ")


def test_env_reference_in_a_list_names_the_index():
    with pytest.raises(ConfigError, match=r"^service::extensions::1: environment variable X"):
        expand_env({"service": {"extensions": ["a", "${X}"]}}, {})


def test_configs_secure_yaml_is_accepted():
    config = load_config(str(REPO / "configs" / "secure.yaml"))
    assert config.pushgateway.auth == "basicauth/functions"
    assert config.prometheus.auth == "bearertokenauth/prometheus"
    assert config.otlp.auth == "basicauth/functions"
    assert config.pushgateway.tls.cert_file and config.otlp.tls.cert_file
    assert config.extensions["bearertokenauth/prometheus"].filename == "/etc/otelgravel/scrape.token"
    assert config.extensions["basicauth/functions"].jobs["checkout"]


# ---- files, read when the service starts -----------------------------------------------------

def start_problems(tmp_path, extensions, pushgateway=None) -> list[str]:
    config = build_config(doc(extensions, list(extensions), pushgateway))
    with pytest.raises(ConfigError) as err:
        Security(config)
    return err.value.problems


def test_unreadable_files_and_non_bcrypt_hashes_are_config_errors_naming_the_key(tmp_path):
    plain = tmp_path / "plain.htpasswd"
    plain.write_text("# ok\ncheckout:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
    good = "u:" + bcrypt.hashpw(b"p", bcrypt.gensalt(4)).decode()
    cases = [
        ({"basicauth/a": {"htpasswd": {"file": str(tmp_path / "missing")}}},
         "extensions::basicauth/a::htpasswd::file: cannot read"),
        ({"basicauth/a": {"htpasswd": {"file": str(plain)}}},
         "extensions::basicauth/a::htpasswd::file: " + str(plain) + " line 2: the hash of user 'checkout' is not bcrypt"),
        ({"basicauth/a": {"htpasswd": {"inline": "u:plaintext"}}},
         "extensions::basicauth/a::htpasswd::inline: line 1"),
        ({"basicauth/a": {"htpasswd": {"inline": good + "\n" + good}}},
         "extensions::basicauth/a::htpasswd::inline: line 2: user 'u' appears twice"),
        ({"basicauth/a": {"htpasswd": {"inline": good}, "jobs": {"typo": ["x"]}}},
         "extensions::basicauth/a::jobs::typo: no such user"),
        ({"bearertokenauth/b": {"filename": str(tmp_path / "missing")}},
         "extensions::bearertokenauth/b::filename: cannot read"),
    ]
    for extensions, fragment in cases:
        problems = start_problems(tmp_path, extensions)
        assert any(p.startswith(fragment) for p in problems), (fragment, problems)
        assert "W6ph5Mm5" not in " ".join(problems)


def test_tls_files_that_do_not_load_are_config_errors_naming_the_key(tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    for tls, fragment in (
            ({"cert_file": str(tmp_path / "none.pem"), "key_file": str(junk)},
             "receivers::pushgateway::tls::cert_file: cannot read"),
            ({"cert_file": str(junk), "key_file": str(tmp_path / "none.key")},
             "receivers::pushgateway::tls::key_file: cannot read"),
            ({"cert_file": str(junk), "key_file": str(junk)},
             "receivers::pushgateway::tls::cert_file: "),
    ):
        problems = start_problems(tmp_path, {}, {"tls": tls})
        assert any(p.startswith(fragment) for p in problems), (fragment, problems)
