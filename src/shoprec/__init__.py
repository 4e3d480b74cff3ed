"""shoprec: e-commerce product search and recommendations served from AI models.

The package root exports almost nothing: import a name from the module that owns it
(``shoprec.catalog.loaders``, ``shoprec.serving.search``, ``shoprec.http.app`` ...).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
