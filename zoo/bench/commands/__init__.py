"""The experiments of ``zoo-bench``, one module each; :mod:`zoo.bench.__main__` lists them."""
