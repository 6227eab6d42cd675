"""Organisations, parks, counties, users and tokens; who may see what."""
