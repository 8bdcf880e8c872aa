"""Walk-in queue: consultations waiting and active, doctors' presence, matching."""
