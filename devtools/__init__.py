"""Developer tools, outside the runtime package: speed and memory benchmarks
(``python -m devtools.benchmark``) and the docs' score tables (``python -m devtools.docs_tables``).
They import :mod:`pipeline`; the pipeline never imports them.
"""
