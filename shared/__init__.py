"""Common package of the QCDC services: event contracts, bus machinery, persistence, settings."""
