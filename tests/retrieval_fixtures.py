"""One small real ingest shared by the search and answer tests (session scope: ingested once per test run).

A court opinion with a text layer (data/samples/ca1_00117684624.pdf, 17 pages) and two short contracts written
here: a merger agreement and a supply agreement that cites a statute and a case.
"""

from __future__ import annotations

import shutil

import pytest

from paths import SAMPLES
from docintel.settings import get_settings

MERGER = """AGREEMENT AND PLAN OF MERGER among LUMEN PARENT INC. and TIFFIN TARGET CORP.

ARTICLE I
DEFINITIONS

Section 1.1 Definitions.

“Knowledge” means the actual knowledge, after reasonable inquiry, of the Chief Executive Officer and the Chief
Financial Officer of the Company.

“Superior Proposal” means a bona fide written Acquisition Proposal that the Board determines is more favorable.

ARTICLE IX
MISCELLANEOUS

9.10 Specific Performance. The parties agree that irreparable damage would occur if this Agreement were not
performed, and that each party shall be entitled to an injunction to prevent breaches.
"""

SUPPLY = """SUPPLY AGREEMENT between ACME WIDGETS LLC and ROADRUNNER FOODS INC.

1. Definitions.

“Knowledge” means the knowledge of the Supplier's plant manager.

2. Remedies.

The parties may seek relief under 42 U.S.C. § 1983 where a state actor interferes with performance, as the Supreme
Court explained in Roe v. Wade, 410 U.S. 113 (1973).
"""


@pytest.fixture(scope="session")
def retrieval_corpus(tmp_path_factory):
    from flows.ingest import ingest_documents

    root = tmp_path_factory.mktemp("retrieval")
    inbox = root / "inbox"
    inbox.mkdir()
    shutil.copyfile(SAMPLES / "ca1_00117684624.pdf", inbox / "ca1_00117684624.pdf")
    (inbox / "Lumen_Tiffin_Merger_Agreement.txt").write_text(MERGER, encoding="utf-8")
    (inbox / "Acme_Roadrunner_Supply_Agreement.txt").write_text(SUPPLY, encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCINTEL_DB_URI", str(root / "lancedb"))
        get_settings.cache_clear()
        summary = ingest_documents([str(inbox)])
        assert summary["documents_new"] == 3 and not summary["failures"]
        yield get_settings()
    get_settings.cache_clear()
