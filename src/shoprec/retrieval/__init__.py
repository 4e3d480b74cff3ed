"""Candidate retrieval: lexical (BM25), vector (FAISS) and exact (brute force, the test reference)."""
