"""Accounts: users, roles, identity levels, sessions, plans and coverage."""
