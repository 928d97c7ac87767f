"""Optional integrations (each behind an extra; import the submodule you need)."""
