"""The QCDC services; each has the same shape: domain, handlers, adapters, entrypoints."""
