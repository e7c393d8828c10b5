"""Writes to attendance, by sub-domain: calendar.py (school calendar, closures), rules.py (school rules),
marks.py (daily marks, optimistic concurrency, amendments), reports.py (guardian absence reports), monthly.py
(monthly register submission, approval hooks, year lock), retention.py (purge after 5 years), long_absence.py
(長期欠席 reason category for MEXT)."""
