"""Property-based tests: no crash on arbitrary text, spans exact, normalisation idempotent."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citations import authority_key, find_citations, find_document_citations

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FRAGMENTS = st.sampled_from([
    "Roe v. Wade, ", "410 U.S. 113", "410 U. S. 113", "U. 8S. ", "F. 8d ", "123 F.3d 456", ", 116", " (1973)",
    "(9th Cir. 1997)", "Id.", " at 120", "Ibid.", "supra", ", at ", "42 USC 1983", "42 U.S.C. $ 1983", "§§ ",
    "\n", "-\n", "  ", ". ", "; ", "See ", "In re Smith, ", "v. ", "29 C.F.R. § 1630.2(g)", "Pub. L. No. 111-148",
    "4l0 U.S. ll3", "U.S.483", "___", "\u00ad", "“", "”", "(", ")", "¶ 12", "n. 3", "Tex. Ins. Code § 4001.003",
])
TEXT = st.one_of(
    st.text(max_size=400),
    st.lists(st.one_of(FRAGMENTS, st.text(max_size=8)), max_size=40).map("".join),
)


def _check_spans(text, cs):
    for c in cs:
        assert 0 <= c.start < c.end <= len(text)
        assert text[c.start:c.end] == c.matched_text
        assert c.matched_text == c.matched_text.strip()


@SETTINGS
@given(TEXT)
def test_no_crash_and_exact_spans(text):
    _check_spans(text, find_citations(text))
    authority_key(text)


@SETTINGS
@given(st.lists(TEXT, max_size=4))
def test_document_spans_per_page(pages):
    cs = find_document_citations(pages)
    for c in cs:
        assert 1 <= c.page_number <= len(pages)
        _check_spans(pages[c.page_number - 1], [c])


CITES = st.builds(
    lambda name, vol, rep, page, pin, paren: f"{name}{vol} {rep} {page}{pin}{paren}",
    st.sampled_from(["", "Roe v. Wade, ", "United States v. Smith, ", "In re Acme Corp., "]),
    st.integers(1, 999).map(str),
    st.sampled_from(["U.S.", "U. S.", "F.3d", "F. 3d", "F. Supp. 2d", "S. Ct.", "S.Ct.", "L. Ed. 2d", "A.2d",
                     "So. 3d", "N.E.2d", "Cal. App. 4th", "U. 8S.", "F. 8d", "Harv. L. Rev."]),
    st.integers(1, 1999).map(str),
    st.sampled_from(["", ", 5", ", 12-14", ", 7 n. 3"]),
    st.sampled_from(["", " (1973)", " (9th Cir. 1997)", " (D. Mass. Mar. 3, 2009)"]),
) | st.builds(
    lambda t, code, sym, sec: f"{t} {code} {sym}{sec}",
    st.integers(1, 50).map(str), st.sampled_from(["U.S.C.", "USC", "C.F.R.", "U. S. C."]),
    st.sampled_from(["§ ", "$ ", "", "§§ "]), st.sampled_from(["1983", "2000e-2(a)(1)", "1630.2(g)", "78j(b)"]),
)


@SETTINGS
@given(CITES)
def test_normalisation_idempotent(cite):
    found = [c for c in find_citations(cite) if c.authority]
    assert found, cite
    c = found[0]
    again = [x for x in find_citations(c.normalized) if x.authority]
    assert again, (cite, c.normalized)
    assert again[0].normalized == c.normalized
    assert again[0].authority == c.authority == authority_key(c.normalized)
