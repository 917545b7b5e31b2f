"""The art-composition attribute network (ACAN): schema, data, model, training, scoring, synthetic data.

One job per module, imported where needed (nothing is imported here):

- the attributes: :mod:`.kinds` (numeric and categorical), :mod:`.schema` (the ordered set, ACAN's),
  :mod:`.schema_file` (reading schema documents);
- the data: :mod:`.labels` (labels CSVs, splits, label tensors), :mod:`.preprocess` (images as the
  network sees them), :mod:`.augment`, :mod:`.features` (the frozen backbone's features and their cache);
- the network: :mod:`.model` (hypercolumn, heads, model files);
- training: :mod:`.losses` (the objective), :mod:`.batches`, :mod:`.metrics` (per-head metrics),
  :mod:`.saved_run` (the run folder and ``--resume``), :mod:`.train` (the run);
- scoring: :mod:`.score` (checked model loading, scoring images), :mod:`.score_format` (table, JSON, CSV);
- :mod:`.synthetic`: a labelled synthetic data set.
"""
