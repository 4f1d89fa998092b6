"""Parlour: a real-time chat platform that runs as one process or as services on a broker."""

__version__ = "0.1.0"
