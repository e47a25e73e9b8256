"""Benchmarks with a README of figures (`python -m bench.callback`); not part of the installed package."""
