"""Peer servers that `parlour bench fanout|connections --topology fastapi-peer|socketio-peer` drives."""
