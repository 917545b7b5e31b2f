"""Neural style transfer: the objective's terms and the run that optimises an image's pixels."""
