"""One module per revision, in order: ``NNNN_what.py`` with revision id ``NNNN``."""
