"""The art-composition attribute network (ACAN): schema, data, model, training, scoring, synthetic data."""
