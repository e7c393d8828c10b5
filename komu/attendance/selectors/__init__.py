"""Reads of attendance, by sub-domain (registers, overview and alerts, guardian reports, monthly registers)."""
