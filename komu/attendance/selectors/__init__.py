"""Reads of attendance, by sub-domain (registers, overview and alerts, calendar and rules, guardian reports, monthly
registers)."""
