"""Auth: users, password hashes, sessions, refresh tokens and signing keys."""
