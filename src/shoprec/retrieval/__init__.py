"""Candidate retrieval: lexical (BM25 over bm25s) and vector (FAISS)."""
