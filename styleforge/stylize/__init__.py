"""Neural style transfer: the objective's terms and the run that optimises an image's pixels.

The pixel optimisation behind ``styleforge transfer``; :func:`styleforge.transfer` (in
:mod:`styleforge.guidance`) adds attribute guidance through :mod:`.extension`.
"""
