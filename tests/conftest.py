"""Fixtures shared by every test layer."""

from __future__ import annotations

import os

# Cheap password hashing in tests only (argon2id's real cost is ~90 ms a hash here).
os.environ.setdefault("PARLOUR_PASSWORD_TIME_COST", "1")
os.environ.setdefault("PARLOUR_PASSWORD_MEMORY_KIB", "8")
os.environ.setdefault("PARLOUR_PASSWORD_PARALLELISM", "1")

# The database fixtures (tests/databases.py), registered once for the whole run.
pytest_plugins = ["tests.databases"]
