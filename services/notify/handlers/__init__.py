"""Handlers of the notify service: events → deliveries (``events``), the delivery of each
one (``delivery``), subscriptions. Entrypoints call only these."""
