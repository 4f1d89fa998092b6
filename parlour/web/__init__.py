"""The web client: static HTML, CSS and JavaScript modules served at `/` (no build step, no Node.js)."""
