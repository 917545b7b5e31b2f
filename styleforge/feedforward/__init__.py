"""Feed-forward style transfer: a network trained once per style, then one pass per picture.

:mod:`.config` holds ``train-stylizer``'s options and defaults (no torch); :mod:`.data` the photos
it trains on; :mod:`.terms` the weighted terms of the transfer, evaluated per image of a batch;
:mod:`.train` the training run on the engine's loop (:func:`styleforge.engine.fit.fit`); :mod:`.model`
the trained model, its files, and stylising tensors and files with it. The network itself is
:mod:`styleforge.nets.transformer`.

This package sits above :mod:`styleforge.stylize` (whose terms it trains with, through
:mod:`.terms` alone) and below :mod:`styleforge.video` (``video --model``) and the CLI. Importing it
imports nothing heavy: the command line reads :mod:`.config` without torch.
"""
