"""The schedulers' dashboard: every queue at a glance (the overview and its wait statistics) and
the schedulers' actions (move a ticket, send a doctor away, drop a ticket)."""
