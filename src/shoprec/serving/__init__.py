"""Services over loaded artifacts (no HTTP types here)."""
