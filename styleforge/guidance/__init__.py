"""Attribute guidance: a trained attribute network as more terms of a transfer, and its scores.

The layer above both :mod:`styleforge.stylize` and :mod:`styleforge.attributes`;
:func:`styleforge.guidance.run.transfer` is :func:`styleforge.transfer`.
"""
