"""Shared test personas and helpers (used by every app's tests; never imported by production code)."""
