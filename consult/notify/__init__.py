"""Notifications: the transactional outbox and its delivery by e-mail over SMTP."""
