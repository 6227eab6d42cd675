"""The audit trail: every state change of the domains' tables in one append-only hash chain.

One mechanism for every domain (:mod:`app.audit.recorder`, installed by :func:`app.create_app`):
the app's sessions stage what each flush (and each bulk statement) touched, and right before the
commit the rows' stored images become chain entries. ``flask --app wsgi audit verify`` recomputes
the chain and compares the tables with the trail.
"""
