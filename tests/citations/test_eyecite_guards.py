"""Known eyecite 2.7.8 problems, each shown on plain eyecite and guarded in ours."""
from eyecite import get_citations

from citations import find_citations
from citations.find import PIECE_MAX, split_pieces

TWO_CITES = ("The court in Roe v. Wade, 410 U.S. 113, held X. Later, Casey v. Planned, 505 U.S. 833 (1992), "
             "held Y.")


def test_issue_321_neighbour_year_and_parties():
    # plain eyecite: the first citation takes the second one's year, the second takes prose as its plaintiff
    plain = get_citations(TWO_CITES)
    assert plain[0].metadata.year == "1992"
    assert plain[1].metadata.plaintiff == "X. Later, Casey"
    roe, casey = find_citations(TWO_CITES)
    assert (roe.year, roe.plaintiff, roe.defendant) == ("", "Roe", "Wade")
    assert (casey.year, casey.plaintiff, casey.defendant) == ("1992", "Casey", "Planned")
    assert roe.normalized == "Roe v. Wade, 410 U.S. 113"


def test_issue_321_sentence_between():
    text = "Roe v. Wade, 410 U.S. 113. Planned Parenthood v. Casey, 505 U.S. 833 (1992)."
    assert get_citations(text)[0].metadata.year == "1992"  # eyecite: wrong
    roe, casey = find_citations(text)
    assert roe.year == "" and casey.year == "1992"
    assert casey.plaintiff == "Planned Parenthood"


def test_parallel_citations_share_the_year():
    a, b, c = find_citations("Roe v. Wade, 410 U.S. 113, 93 S. Ct. 705, 35 L. Ed. 2d 147 (1973).")
    assert [x.year for x in (a, b, c)] == ["1973"] * 3
    assert a.normalized == "Roe v. Wade, 410 U.S. 113 (1973)"


def test_line_break_before_year():
    text = "Roe v. Wade, 410 U.S. 113,\n116\n(1973)."
    plain = get_citations(text)[0]
    assert plain.metadata.year is None and plain.metadata.pin_cite is None  # eyecite loses both
    [c] = find_citations(text)
    assert (c.year, c.pin_cite) == ("1973", "116")
    assert c.matched_text == "Roe v. Wade, 410 U.S. 113,\n116\n(1973)"


def test_case_name_with_long_plaintiff():
    text = "See Regents of Univ. of Cal. v. Bakke, 438 U. S. 265, 307 (1978)."
    assert get_citations(text)[0].metadata.plaintiff == "Cal."  # eyecite
    [c] = find_citations(text)
    assert c.plaintiff == "Regents of Univ. of Cal."


def test_split_pieces_offsets_and_sizes():
    para = "Roe v. Wade, 410 U.S. 113 (1973). Some words here and there. " * 60
    text = "\n\n".join([para] * 20)
    pieces = list(split_pieces(text))
    assert len(pieces) >= 5
    assert "".join(p for _, p in pieces) == text
    for off, p in pieces:
        assert text[off:off + len(p)] == p and len(p) <= PIECE_MAX


def test_pieces_give_same_citations_as_one_text():
    unit = ("See Roe v. Wade, 410 U.S. 113, 116 (1973). Id. at 120. "
            "Casey v. Planned, 505 U.S. 833, 840 (1992). ") * 3
    text = "\n\n".join([unit] * 150)  # ~60 KB: several pieces
    cs = find_citations(text)
    assert len(cs) == 9 * 150
    assert all(text[c.start:c.end] == c.matched_text for c in cs)
    assert {c.normalized for c in cs if c.kind == "case"} == {
        "Roe v. Wade, 410 U.S. 113, 116 (1973)", "Casey v. Planned, 505 U.S. 833, 840 (1992)"}
