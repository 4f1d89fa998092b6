"""The HTTP edge every service shares: problem details, request context, health, metrics, bearer auth."""
