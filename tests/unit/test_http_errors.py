from otelgravel.errors import StateUnavailable
from otelgravel.http_errors import error_response


def test_state_unavailable_is_503_with_retry_after_for_push_and_otlp():
    for otlp in (False, True):
        response = error_response(StateUnavailable("disk full"), otlp=otlp)
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
