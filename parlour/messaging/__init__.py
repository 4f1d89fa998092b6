"""Messaging: chats, membership, authorization, ordered idempotent messages, history, read cursors."""
