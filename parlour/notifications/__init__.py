"""Notifications: Web Push and signed webhooks for the members of a chat who are not looking."""
