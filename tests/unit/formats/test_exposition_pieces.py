"""The scrape in pieces (exposition_pieces): joined, it is the scrape in one go; and a piece
rendered after another scrape, in another escaping scheme, changed the series' caches is still
the same text (the exporter lets such scrapes run between pieces)."""
from otelgravel.core.store import Store
from otelgravel.formats.exposition import SLICE, exposition_pieces, write_text
from otelgravel.formats.prom_text import parse_prom_text
from otelgravel.processor import GravelProcessor

JOB = (("job", "x"),)


def store_with_a_large_family() -> Store:
    """More than two slices of one family; the last series has a label name that the
    underscores scheme writes differently (a.b), so it keeps a rendering per scheme."""
    n = 2 * SLICE + 10
    lines = ["# TYPE big gauge"] + [f'big{{n="{i:05d}"}} {i}' for i in range(n)]
    lines.append('big{n="99999","a.b"="v"} 1')
    processor = GravelProcessor(Store())
    processor.push(JOB, parse_prom_text(("\n".join(lines) + "\n").encode()), 1.0)
    return processor.store


def test_the_pieces_joined_are_the_scrape():
    store = store_with_a_large_family()
    pieces = list(exposition_pieces(store, 2.0, False))
    assert len([p for p in pieces if any("big{" in line for line in p)]) == 3  # sliced
    assert "".join(line for piece in pieces for line in piece) == write_text(store, 2.0)


def test_a_piece_after_another_schemes_scrape_is_unchanged():
    expected = write_text(store_with_a_large_family(), 2.0)  # the same store, rendered in one go
    store = store_with_a_large_family()
    pieces = exposition_pieces(store, 2.0, False)
    out = []
    for piece in pieces:  # up to the large family's first slice
        out.extend(piece)
        if any(line.startswith("big{") for line in piece):
            break
    write_text(store, 2.0, "allow-utf-8")  # between two pieces: per-scheme caches, the bit set
    for piece in pieces:
        out.extend(piece)
    assert "".join(out) == expected
    assert 'big{a_b="v",job="x",n="99999"} 1\n' in expected
