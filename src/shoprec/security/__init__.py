"""Security for artifacts and the API: signatures, encryption at rest, API keys, audit log.

Import a name from the module that owns it; this package root exports nothing.

- :mod:`shoprec.security.crypto` (the only importer of ``cryptography``): Ed25519 signatures
  over ``manifest.json`` (``manifest.sig``) and AES-256-GCM encryption of artifact files.
- :mod:`shoprec.security.apikeys`: API keys with roles, stored only as salted hashes.
- :mod:`shoprec.security.audit`: an append-only, hash-chained JSON Lines audit log.

``apikeys`` and ``audit`` need only the standard library.
"""
