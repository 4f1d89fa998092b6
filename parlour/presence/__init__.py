"""Presence: who is online, away, or last seen when, told only to the users who share a chat."""
