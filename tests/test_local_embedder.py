"""The NumPy query encoder must give the same vectors as sentence-transformers on the same packaged weights:
queries and passages have to land in one vector space."""

import numpy as np

from models.local_embedder import LocalEmbedder

QUERIES = [
    "What is the termination fee payable by the Company under the merger agreement?",
    "Roe v. Wade, 410 U.S. 113 (1973)",
    "§ 1983",
    "Does the privacy policy allow sharing personal data with advertisers? " * 30,  # past the 256-token limit
]


def test_numpy_query_vectors_equal_sentence_transformers_vectors():
    embedder = LocalEmbedder()
    batch = np.asarray(embedder.embed_documents(QUERIES))
    single = np.asarray([embedder.embed_query(query) for query in QUERIES])
    assert single.shape == (len(QUERIES), LocalEmbedder.dimension)
    assert np.abs(batch - single).max() < 1e-5
    assert np.allclose(np.linalg.norm(single, axis=1), 1.0, atol=1e-5)
