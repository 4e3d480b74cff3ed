"""The HTTP edge: app factory, routes, ASGI middleware, the one error -> JSON mapping."""
