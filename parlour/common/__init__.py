"""What the services truly share: settings, ports, token verification, the HTTP edge, telemetry."""
