"""The access matrix (docs/security.md): who may call each HTTP route and Socket.IO event,
what the others get, and what is audited. ``cells`` is its vocabulary, ``table`` the expected
cells (one entry per route or event), ``render`` the markdown in docs/security.md, ``world``
and ``walk`` the integration test's data and requests."""
