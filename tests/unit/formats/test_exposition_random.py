"""Whatever the store accepts, both writers produce output prometheus_client's strict parsers read.

Random pushes (every type, NaN/±Inf/negative values, escapes in labels, every clear mode, several
groups) go through the real text parser and the store; every scrape in between must parse.
"""
import math
import random

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from otelgravel.core.store import Store
from otelgravel.errors import GravelError
from otelgravel.formats.exposition import write_openmetrics, write_text
from otelgravel.formats.openmetrics import parse_openmetrics
from otelgravel.processor import GravelProcessor

VALUES = ["0", "1", "2.5", "-3", "NaN", "+Inf", "-Inf", "1e300", "17"]
LABEL_VALUES = ["a", "", 'q"uote', "back\\\\slash", "new\\nline", "ünï", "x,y}z"]
MODES = [None, "sum", "replace", "family", "mean1m", "max1m", "p99_1m", "last1m"]


def random_family(rng, name):
    kind = rng.choice(["counter", "gauge", "histogram", "summary", "info", "stateset",
                       "gaugehistogram", "unknown"])
    lines = [f"# TYPE {name} {kind}", f'# HELP {name} help "{name}" \\\\ \\n']
    for i in range(rng.randrange(1, 4)):
        labels = [f'l{j}="{rng.choice(LABEL_VALUES)}"' for j in range(rng.randrange(0, 3))]
        labels.append(f'series="{i}"')
        mode = rng.choice(MODES)
        if mode and (kind in ("counter", "gauge", "unknown") or "1m" not in mode):
            labels.append(f'clear_mode="{mode}"')
        ls = ",".join(labels)
        if kind == "counter":
            lines.append(f"{name}_total{{{ls}}} {rng.choice(['0', '1', '4.5', '1e10'])}")
        elif kind in ("gauge", "unknown"):
            lines.append(f"{name}{{{ls}}} {rng.choice(VALUES)}")
        elif kind == "info":
            lines.append(f"{name}_info{{{ls}}} 1")
        elif kind == "stateset":
            for state in ("on", "off"):
                lines.append(f'{name}{{{ls},{name}="{state}"}} {rng.choice(["0", "1"])}')
        elif kind in ("histogram", "gaugehistogram"):
            bounds = sorted(rng.sample([0.1, 0.5, 1.0, 2.5, 10.0], rng.randrange(0, 4)))
            count = 0
            for le in bounds:
                count += rng.randrange(0, 3)
                lines.append(f'{name}_bucket{{{ls},le="{le}"}} {count}')
            count += rng.randrange(0, 3)
            lines.append(f'{name}_bucket{{{ls},le="+Inf"}} {count}')
            suffix = "_g" if kind == "gaugehistogram" else "_"
            lines.append(f"{name}{suffix}count{{{ls}}} {count}")
            lines.append(f"{name}{suffix}sum{{{ls}}} {rng.random() * 10:.3f}")
        else:
            for q in sorted(rng.sample([0.5, 0.9, 0.99], rng.randrange(0, 3))):
                lines.append(f'{name}{{{ls},quantile="{q}"}} {rng.choice(VALUES)}')
            lines.append(f"{name}_count{{{ls}}} {rng.randrange(0, 9)}")
            lines.append(f"{name}_sum{{{ls}}} {rng.random():.3f}")
    return lines


@pytest.mark.parametrize("seed", range(40))
def test_every_accepted_state_scrapes_valid(seed):
    rng = random.Random(seed)
    store = Store()
    processor = GravelProcessor(store)
    names = [f"m{i}" for i in range(6)]
    accepted = 0
    for step in range(25):
        lines = []
        for name in rng.sample(names, rng.randrange(1, 4)):
            lines += random_family(rng, name)
        body = ("\n".join(lines) + "\n# EOF\n").encode()
        group = (("job", rng.choice(["a", "b"])),)
        try:
            processor.push(group, parse_openmetrics(body), now=1000.0 + step)
            accepted += 1
        except GravelError:
            pass
        om = write_openmetrics(store, now=1000.0 + step)
        text = write_text(store, now=1000.0 + step)
        om_families = list(parse_om(om))
        list(parse_text(text))
        for family in om_families:
            if family.type == "counter":
                assert all(s.value >= 0 or math.isnan(s.value) for s in family.samples)
    assert accepted > 0
