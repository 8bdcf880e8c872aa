"""consult: a real-time telemedicine consultation server."""
