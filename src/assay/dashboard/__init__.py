"""The web dashboard: pages served by ``assay server`` at ``/`` and their JSON under ``/dashboard/api``."""
