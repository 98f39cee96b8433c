"""Short forms, Id. and supra across pages; the table of authorities."""
from citations import find_document_citations, table_of_authorities

PAGES = [
    "Roe v. Wade, 410 U.S. 113, 116 (1973). Gratz v. Bollinger, 539 U.S. 244 (2003); "
    "Grutter v. Bollinger, 539 U.S. 306 (2003). 42 U.S.C. § 1983.",
    "Id. § 1985. As held in Roe, 410 U.S. at 120, and see 539 U.S., at 275; 539 U.S., at 330.",
    "Id., at 331. Grutter, supra, at 340. Brief for Respondents 25. Ibid.",
    "Roe, supra, at 150. 123 Harv. L. Rev. 456 (2010).",
]


def _by_page(cs):
    return [(c.page_number, c.kind, c.authority) for c in cs]


def test_resolution_across_pages():
    cs = find_document_citations(PAGES)
    assert _by_page(cs) == [
        (1, "case", "410 U.S. 113"), (1, "case", "539 U.S. 244"), (1, "case", "539 U.S. 306"),
        (1, "statute", "42 U.S.C. § 1983"),
        (2, "id", "42 U.S.C. § 1985"),  # Id. with another section of the same code
        (2, "short_case", "410 U.S. 113"),
        (2, "short_case", "539 U.S. 244"),  # 275 is in Gratz (244), not Grutter (306)
        (2, "short_case", "539 U.S. 306"),
        (3, "id", "539 U.S. 306"), (3, "supra", "539 U.S. 306"),
        (3, "id", ""),  # Ibid. after a brief refers to the brief
        (4, "supra", "410 U.S. 113"), (4, "journal", "123 Harv. L. Rev. 456"),
    ]
    roe_short = cs[5]
    assert roe_short.normalized == "Roe v. Wade, 410 U.S. 113, 120 (1973)"
    assert cs[8].normalized == "Grutter v. Bollinger, 539 U.S. 306, 331 (2003)"
    for c in cs:
        assert PAGES[c.page_number - 1][c.start:c.end] == c.matched_text


def test_id_pin_outside_the_previous_opinion_goes_back():
    cs = find_document_citations(["Smith v. Jones, 459 F. Supp. 3d 273 (D. Me. 2020). Id. at 281. "
                                  "Accord Doe v. Roe, 303 F.3d 1, 7 (1st Cir. 2002). Id. at 287."])
    assert [c.authority for c in cs if c.kind == "id"] == ["459 F. Supp. 3d 273", "459 F. Supp. 3d 273"]


def test_running_headers_are_not_citations_or_antecedents():
    header = "                 Cite as: 570 U. S. ____ (2013)           {}\n\n        Opinion of the Court\n\n"
    filler = "Some ordinary line of opinion text.\n" * 8
    pages = [header.format(n) + filler + body + filler for n, body in enumerate([
        "Roe v. Wade, 410 U.S. 113 (1973).\n" * 3, "Text.\n" * 3, "Brief for X 25. Id., at 26.\n" * 2,
        "Parents Involved in Community Schools v. Seattle School Dist. No. 1, 551 U.S. 701 (2007).\n"], 1)]
    cs = find_document_citations(pages)
    assert all("570" not in c.authority for c in cs)
    assert all(c.authority == "" for c in cs if c.kind == "id")
    [parents] = [c for c in cs if c.authority == "551 U.S. 701"]
    assert parents.plaintiff == "Parents Involved in Community Schools"


def test_citation_crossing_a_page_break():
    pages = ["Text text. See Watchtower Bible & Tract", "Soc'y of N.Y., Inc. v. Colombani, 712 F.3d 6, 12 (1st Cir. 2013)."]
    [c] = find_document_citations(pages)
    assert c.page_number == 2 and c.plaintiff == "Watchtower Bible & Tract Soc'y of N.Y., Inc."
    assert pages[1][c.start:c.end] == c.matched_text


def test_table_of_authorities():
    pages = [f"Page {n}. Roe v. Wade, 410 U.S. 113 (1973). Id. at 120." for n in range(1, 8)]
    pages[1] += " Brown v. Board of Education, 347 U.S. 483 (1954). 42 U.S.C. § 1983; 42 USC 12101."
    pages[2] += " Id. See 347 U.S. at 490. U.S. Const. amend. XIV. 123 Harv. L. Rev. 456 (2010)."
    toa = table_of_authorities(find_document_citations(pages), passim_threshold=5)
    assert list(toa) == ["Cases", "Statutes", "Other Authorities"]
    assert toa["Cases"] == [
        {"authority": "347 U.S. 483", "display": "Brown v. Board of Education, 347 U.S. 483 (1954)", "pages": [2, 3]},
        {"authority": "410 U.S. 113", "display": "Roe v. Wade, 410 U.S. 113 (1973)", "pages": "passim"},
    ]
    assert [e["display"] for e in toa["Statutes"]] == ["42 U.S.C. § 1983", "42 U.S.C. § 12101"]
    assert [e["authority"] for e in toa["Other Authorities"]] == ["123 Harv. L. Rev. 456", "U.S. Const. amend. XIV"]
    assert table_of_authorities(find_document_citations(pages), passim_threshold=10)["Cases"][1]["pages"] == list(range(1, 8))


def test_toa_on_real_document(corpus):
    clean_pages, _, _ = corpus["ca1_00117684624"]
    toa = table_of_authorities(find_document_citations(clean_pages))
    names = [e["display"] for e in toa["Cases"]]
    assert names == sorted(names, key=str.lower) or len(names) > 10
    [mills] = [e for e in toa["Cases"] if e["authority"] == "459 F. Supp. 3d 273"]
    assert mills["pages"] == "passim"  # cited on 6 pages, more than the default threshold of 5
    toa = table_of_authorities(find_document_citations(clean_pages), passim_threshold=6)
    [mills] = [e for e in toa["Cases"] if e["authority"] == "459 F. Supp. 3d 273"]
    assert mills["pages"] == [3, 7, 10, 11, 13, 14]


def test_westlaw_star_pages_and_a_lost_star_page():
    cs = find_document_citations([
        "Roman Catholic Diocese of Brooklyn v. Cuomo, No. 20A87, 2020 WL 6948354, at *3 (U.S. Nov. 25, 2020). "
        "Later: Diocese, 2020 WL 6948354, at *2. And (the star page lost to OCR) Cuomo, 2020 WL 6948354, at."
    ])
    assert [c.normalized for c in cs] == [
        "Roman Catholic Diocese of Brooklyn v. Cuomo, 2020 WL 6948354, at *3 (U.S. 2020)",
        "Roman Catholic Diocese of Brooklyn v. Cuomo, 2020 WL 6948354, at *2 (U.S. 2020)",
        "Roman Catholic Diocese of Brooklyn v. Cuomo, 2020 WL 6948354 (U.S. 2020)",
    ]
