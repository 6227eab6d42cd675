"""Pieces shared by every domain package: errors, time, auth scoping."""
