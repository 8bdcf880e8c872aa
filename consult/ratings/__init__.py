"""Ratings: a patient scores their finished consultations, past booked visits and the service."""
