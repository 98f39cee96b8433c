"""One module per pipeline stage: identify, pages, ocr, chunking, citations, embed, store, search, answer."""
