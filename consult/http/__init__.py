"""HTTP edge: REST routes, the error middleware, OpenAPI and the static web pages."""
