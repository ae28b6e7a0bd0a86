"""``python -m dotcompute.bench``: dotcompute beside PyDotCompute, same run."""
