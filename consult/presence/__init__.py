"""Who is connected: doctors' presence leases, each connection's row, server processes'
heartbeats (presence that survives a crash)."""
