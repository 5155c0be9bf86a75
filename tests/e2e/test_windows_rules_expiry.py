"""Windowed clear modes, server-side rules and expiry through the running gateway."""
import time

import pytest

AGGS = {"sum2m": 5050, "mean2m": 50.5, "min2m": 1, "max2m": 100, "count2m": 100, "last2m": 100,
        "median2m": 50.5, "p90_2m": 90}


def wait_for(predicate, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def test_windowed_aggregates_of_one_to_a_hundred(gateway):
    for i in range(1, 101):
        body = "".join(f'w{{agg="{mode}",clear_mode="{mode}"}} {i}\n' for mode in AGGS)
        assert gateway.push("/metrics/job/fn", body)[0] == 200
    for openmetrics in (False, True):
        samples = gateway.samples(openmetrics)
        for mode, expected in AGGS.items():
            got = samples[("w", frozenset({("job", "fn"), ("agg", mode)}))]
            assert got == pytest.approx(expected, rel=0.01), mode
            if not mode.startswith(("median", "p")):
                assert got == expected, mode
    assert "# TYPE w gauge" in gateway.scrape("application/openmetrics-text")


@pytest.mark.parametrize("mode", ["mean1h30m", "max_10m", "p99_5m", "p995m", "mean_5m"])
def test_more_spellings_are_accepted(gateway, mode):
    assert gateway.push("/metrics/job/fn", f'x{{clear_mode="{mode}"}} 3\n')[0] == 200
    assert gateway.value("x", job="fn") == pytest.approx(3, rel=0.01)  # quantiles: within 1%


def test_mean3s_decays_then_returns_with_only_the_new_value(gateway):
    for v in (0, 5, 10):
        assert gateway.push("/metrics/job/fn", f'm{{clear_mode="mean3s"}} {v}\n')[0] == 200
    pushed = time.monotonic()
    assert gateway.value("m", job="fn") == 5
    assert wait_for(lambda: gateway.value("m", job="fn") is None, timeout=6)
    assert time.monotonic() - pushed >= 2.5  # not before most of the window (59/60 of it, less latency)
    assert gateway.push("/metrics/job/fn", 'm{clear_mode="mean3s"} 42\n')[0] == 200
    assert gateway.value("m", job="fn") == 42


def test_a_server_rule_sets_the_mode(gateway_factory):
    gw = gateway_factory(["processors.gravel.rules=[{metric: '^mem_.*', clear_mode: mean5m}]"])
    for v in (0, 10):
        assert gw.push("/metrics/job/fn", f"# TYPE mem_used gauge\nmem_used {v}\nother {v}\n")[0] == 200
    assert gw.value("mem_used", job="fn") == 5
    assert gw.value("other", job="fn") == 10  # no rule: untyped sums, 0 + 10
    assert gw.push("/metrics/job/fn", 'mem_free{clear_mode="replace"} 1\n')[0] == 200
    assert gw.push("/metrics/job/fn", 'mem_free{clear_mode="replace"} 2\n')[0] == 200
    assert gw.value("mem_free", job="fn") == 2  # a label on the series wins over the rule


def test_expire_after_drops_series_and_group_without_any_scrape(gateway_factory):
    gw = gateway_factory(["processors.gravel.expire_after=2s", "service.telemetry.logs.level=debug"])
    assert gw.push("/metrics/job/fn", "# TYPE c counter\nc 1\n")[0] == 200
    pushed = time.monotonic()
    # no scrape in between: the expiry tick drops the series by itself and logs it
    assert wait_for(lambda: any("msg=expired" in line for line in gw.log), timeout=6)
    assert time.monotonic() - pushed >= 1.5  # not before expire_after (2 s, less latency)
    time.sleep(max(0.0, 3.0 - (time.monotonic() - pushed)))  # the "3 seconds later"
    samples = gw.samples()
    assert samples == {}, samples  # neither c_total nor push_time_seconds


def test_a_windowed_histogram_is_refused(gateway):
    body = ('# TYPE h histogram\nh_bucket{le="1",clear_mode="max5m"} 1\n'
            'h_bucket{le="+Inf",clear_mode="max5m"} 1\nh_count{clear_mode="max5m"} 1\nh_sum{clear_mode="max5m"} 1\n')
    status, reply, _ = gateway.push("/metrics/job/fn", body)
    assert status == 400 and "windowed modes apply to single values" in reply.decode()
    assert gateway.samples() == {}
