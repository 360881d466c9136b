"""HTTP API: app factory, auth, routers, problem+json errors."""
