"""The benchmarks of issue 8; ``scripts/bench`` runs them all (see ``run.py``)."""
