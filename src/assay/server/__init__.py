"""The HTTP server: SigOpt API v1 routes over :mod:`assay.service`, plus the dashboard."""

from assay.server.app import create_app

__all__ = ["create_app"]
