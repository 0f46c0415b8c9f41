"""Handlers of the reports service: one per command or event, grouped by concept.
Entrypoints call only these; each runs in one unit of work."""
