"""Every example citation in reporters-db's REPORTERS table (the `examples` field of each reporter)."""
from citations.evaluate import check_example, reporters_db_examples

# measured: 472 of 504 found with the example's reporter edition, volume and page, and normalised to
# "<volume> <edition> <page>" (93.7%); the misses are listed by `python benchmarks/citations.py`
FLOOR = 0.93


def test_reporters_db_examples_rate():
    examples = reporters_db_examples()
    assert len(examples) > 400
    results = [check_example(ex, eds) for ex, eds in examples]
    rate = sum(1 for found, norm, _ in results if found and norm) / len(examples)
    assert rate >= FLOOR, rate


def test_common_reporters_examples():
    for ex, eds in reporters_db_examples():
        if ex.split()[1:2] and any(e in ("U.S.", "F.", "F.2d", "F.3d", "S. Ct.", "A.2d", "P.3d") for e in eds):
            found, norm, got = check_example(ex, eds)
            if ex[0].isdigit() and "(" not in ex:
                assert found and norm, (ex, got)
