"""The API the pipeline calls: shapes, fields, spans."""
import dataclasses

from citations import (KINDS, Citation, authority_key, find_citations, find_document_citations,
                       render_table_of_authorities_markdown, table_of_authorities)


def test_full_case_citation_fields():
    text = "See Roe v. Wade, 410 U.S. 113, 116 (1973) (holding X)."
    [c] = find_citations(text)
    assert isinstance(c, Citation) and dataclasses.is_dataclass(c)
    assert c.kind == "case"
    assert c.normalized == "Roe v. Wade, 410 U.S. 113, 116 (1973)"
    assert c.authority == "410 U.S. 113"
    assert (c.volume, c.reporter, c.page, c.pin_cite, c.year) == ("410", "U.S.", "113", "116", "1973")
    assert (c.plaintiff, c.defendant, c.parenthetical) == ("Roe", "Wade", "holding X")
    assert c.page_number == 1
    assert text[c.start:c.end] == c.matched_text == "Roe v. Wade, 410 U.S. 113, 116 (1973)"


def test_court_from_parenthetical():
    [c] = find_citations("United States v. Smith, 123 F.3d 456, 460 (9th Cir. 1997).")
    assert c.court == "9th Cir." and c.year == "1997"
    assert c.normalized == "United States v. Smith, 123 F.3d 456, 460 (9th Cir. 1997)"


def test_kinds():
    text = ("Roe v. Wade, 410 U.S. 113 (1973). Id. at 120. See 410 U.S. at 121. Roe, supra, at 122. "
            "42 U.S.C. § 1983; 29 C.F.R. § 1630.2(g); Pub. L. No. 111-148, 124 Stat. 119 (2010); "
            "Smith, Title, 123 Harv. L. Rev. 456, 460 (2010); U.S. Const. amend. XIV, § 1.")
    got = [(c.kind, c.authority) for c in find_citations(text)]
    assert got == [
        ("case", "410 U.S. 113"), ("id", "410 U.S. 113"), ("short_case", "410 U.S. 113"),
        ("supra", "410 U.S. 113"), ("statute", "42 U.S.C. § 1983"), ("regulation", "29 C.F.R. § 1630.2"),
        ("session_law", "Pub. L. No. 111-148"), ("session_law", "124 Stat. 119"),
        ("journal", "123 Harv. L. Rev. 456"), ("other", "U.S. Const. amend. XIV"),
    ]
    assert all(k in KINDS for k, _ in got)


def test_short_forms_normalise_to_full_form_with_own_pin():
    cs = find_citations("Roe v. Wade, 410 U.S. 113, 116 (1973). Id. at 120. Later: 410 U.S. at 130.")
    assert [c.normalized for c in cs] == [
        "Roe v. Wade, 410 U.S. 113, 116 (1973)",
        "Roe v. Wade, 410 U.S. 113, 120 (1973)",
        "Roe v. Wade, 410 U.S. 113, 130 (1973)",
    ]


def test_authority_key():
    assert authority_key("410 U. S. 113") == "410 U.S. 113"
    assert authority_key("Roe v. Wade, 410 U.S. 113, 116 (1973)") == "410 U.S. 113"
    assert authority_key("42 USC 1983") == "42 U.S.C. § 1983"
    assert authority_key("42 U.S.C. § 1983(b)") == "42 U.S.C. § 1983"
    assert authority_key("123 F. 3d 456") == "123 F.3d 456"
    assert authority_key("hello world") == ""
    assert authority_key("") == ""
    assert authority_key("Id. at 5") == ""


def test_statutes_and_state_codes():
    cs = find_citations("Under Texas Insurance Code § 4001.003(1) and TEX. INS. CODE § 4001.003(1)(B), "
                        "and Cal. Penal Code § 187, and 42 U.S.C. §§ 1983, 1985.")
    assert [c.authority for c in cs] == ["Tex. Ins. Code § 4001.003", "Tex. Ins. Code § 4001.003",
                                         "Cal. Penal Code § 187", "42 U.S.C. § 1983", "42 U.S.C. § 1985"]
    assert cs[1].normalized == "Tex. Ins. Code § 4001.003(1)(B)"


def test_empty_and_blank_input():
    assert find_citations("") == []
    assert find_document_citations([]) == []
    assert find_document_citations(["", "   \n"]) == []


def test_table_of_authorities_markdown_smoke():
    cs = find_document_citations(["Roe v. Wade, 410 U.S. 113 (1973).", "42 U.S.C. § 1983. Id."])
    toa = table_of_authorities(cs)
    md = render_table_of_authorities_markdown(toa, "Brief")
    assert md.startswith("# Brief")
    assert "*Roe v. Wade*, 410 U.S. 113 (1973) | 1" in md
    assert "42 U.S.C. § 1983 | 2" in md
