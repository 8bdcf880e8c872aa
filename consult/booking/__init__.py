"""Booking: doctors' weekly schedules, the slots they produce, patients' bookings, iCalendar."""
