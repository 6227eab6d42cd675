"""Taizhou demo data: ``flask --app wsgi demo`` (see :mod:`app.demo.data`)."""
