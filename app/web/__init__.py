"""Web pages: sign-in, the mobile scan page, dashboards. Simplified Chinese by default."""
