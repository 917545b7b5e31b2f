"""Neural style transfer: the pixels of an image optimised against a frozen network.

The pixel optimisation behind ``styleforge transfer``, in stages: :mod:`.plan` (the pyramid's
sizes, shapes, tiles and images, no network), :mod:`.memory` (the check on that plan),
:mod:`.objective` (one scale's terms, with the style losses of :mod:`.losses` over the features of
:mod:`.features`), :mod:`.pyramid` (the scales in order; a tiled one in :mod:`.tiled`), and
:mod:`.run` (the :class:`~.run.Stylizer`, which holds the network and the style statistics, and
:func:`~.run.transfer`). :func:`styleforge.transfer` (in :mod:`styleforge.guidance`) adds attribute
guidance through :mod:`.extension`.
"""
