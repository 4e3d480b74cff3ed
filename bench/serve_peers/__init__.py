"""The servers ``bench/serve.py`` compares shoprec against."""
