"""The engine, in rooms; each imports only the rooms below it (checked by import-linter).

From the top: ``cli`` (the composition root) > ``authoring`` and ``report`` > ``engine``
> ``runs`` > ``mtl`` > ``model`` > ``data`` > ``config`` and ``files`` (the bottom).
docs/architecture.md says what each room holds.
"""
