"""A shim for tools that still call ``setup.py``; pyproject.toml holds the package's metadata."""

from setuptools import setup

setup()
