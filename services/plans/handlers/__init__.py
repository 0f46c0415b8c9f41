"""Handlers of the plans service: one per command, grouped by concept. Entrypoints call only
these; each runs in one unit of work, so a state change and its events commit together."""
