"""A large scrape lets pushes in: it is rendered in pieces, and the event loop runs between them.

300,000 series changed since the last scrape take the writer most of a second to render. A push
sent while that scrape renders is answered before the scrape's first byte comes back; were the
rendering in one go, the push would wait behind it (the broken-on-purpose check of this test)."""
from __future__ import annotations

import http.client
import threading
import time

SERIES = 300_000


def big_body(value: int) -> bytes:
    return ("# TYPE big gauge\n" + "".join(f'big{{n="{i}"}} {value}\n' for i in range(SERIES))).encode()


def test_a_push_is_answered_while_a_large_scrape_renders(gateway_factory):
    gw = gateway_factory(["processors.gravel.max_series=1000000",
                          "receivers.pushgateway.max_body_size=64MiB"])
    host, port = gw.url[len("http://"):].rsplit(":", 1)
    scrape_host, scrape_port = gw.scrape_url[len("http://"):].rsplit(":", 1)

    def request(h, p, method, path, body=None, timeout=60):
        conn = http.client.HTTPConnection(h, int(p), timeout=timeout)
        conn.request(method, path, body)
        return conn

    for value in (1, 2):  # the second push changes every series: the next scrape renders all
        conn = request(host, port, "PUT", "/metrics/job/big", big_body(value))
        assert conn.getresponse().status == 200
        conn.close()
    times = {}

    def scrape():
        conn = request(scrape_host, scrape_port, "GET", "/metrics")
        response = conn.getresponse()  # the status line: sent once the whole scrape is rendered
        times["scrape_first_byte"] = time.monotonic()
        body = response.read()
        times["scrape_lines"] = body.count(b"\nbig{")
        conn.close()

    scraper = threading.Thread(target=scrape)
    started = time.monotonic()
    scraper.start()
    time.sleep(0.15)  # the scrape is being rendered now (it takes far longer than this)
    conn = request(host, port, "POST", "/metrics/job/small", b"# TYPE small counter\nsmall 1\n")
    assert conn.getresponse().status == 200
    times["push_answered"] = time.monotonic()
    conn.close()
    scraper.join(60)
    assert times["scrape_lines"] >= SERIES - 1
    render = times["scrape_first_byte"] - started
    assert render > 0.3, f"the scrape took {render:.2f} s: too short to tell anything"
    assert times["push_answered"] < times["scrape_first_byte"], (
        f"the push waited for the scrape: answered {times['push_answered'] - started:.2f} s "
        f"after the scrape began, whose first byte came at {render:.2f} s")
