"""Attendance screens, by sub-domain: entry.py (morning entry, calendar, rules, overview), guardian.py (guardian
reports), monthly.py (monthly register, approval, PDFs). Each module exports `urlpatterns`; urls.py joins them."""
