"""``assay.ray``: short name for :mod:`assay.integrations.ray` (``pip install "assay[ray]"``)."""

from assay.integrations.ray import AssaySearch, optimize

__all__ = ["AssaySearch", "optimize"]
