"""Calls in a consultation: who may call, switching the form with consent, recording consent."""
