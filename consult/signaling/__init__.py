"""Socket.IO edge: authentication on connect, per-user rooms, events <-> services."""
