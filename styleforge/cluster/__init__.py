"""Transfers and videos spread over the workers of a Ray cluster (``--backend ray``).

:mod:`.workers` connects to the cluster (``RAY_ADDRESS``, else a local instance), decides how many
workers a run gets (one per GPU where the cluster has GPUs, else one per CPU core) and keeps them
busy, passing their progress on and their stop on Ctrl-C or SIGTERM; :mod:`.pictures` runs many
content images, each worker building the network and the style statistics (or reading the trained
stylizer of ``--model``) once; :mod:`.chunks`
cuts a video into chunks (at scene cuts, else at fixed lengths that overlap) and :mod:`.video` runs
them and joins them.

This layer sits above :mod:`styleforge.stylize`, :mod:`styleforge.guidance` and
:mod:`styleforge.video`, and below the CLI. Ray is an optional extra (``pip install
'styleforge[ray]'``): without it a run is one line, ``--backend ray: Ray is not installed``.
"""

from .chunks import Chunk, plan_chunks, scene_cuts
from .pictures import (
    PictureProgress,
    PictureRun,
    finished_model_pictures,
    finished_pictures,
    stylize_pictures_with_model,
    transfer_pictures,
)
from .video import stylize_video_on_cluster, stylize_video_with_model_on_cluster

__all__ = [
    "Chunk",
    "PictureProgress",
    "PictureRun",
    "finished_model_pictures",
    "finished_pictures",
    "plan_chunks",
    "scene_cuts",
    "stylize_pictures_with_model",
    "stylize_video_on_cluster",
    "stylize_video_with_model_on_cluster",
    "transfer_pictures",
]
