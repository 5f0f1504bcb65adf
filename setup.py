"""A shim for tools that still call ``setup.py``; setup.cfg holds the package's metadata."""

from setuptools import setup

setup()
