"""The gateway (transportation): one-time passes, WebSocket sessions and the hub that feeds them."""
