"""Statistics (趋零填埋): per park, county and city, per month, quarter and year.

Aggregated in SQL (``services``), exported as CSV/XLSX (``exports``), shown on ``/statistics``.
"""
