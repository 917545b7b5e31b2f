"""Frozen feature networks defined with torchvision's state-dict keys, and where their weights come from."""
