"""The patient's timeline: everything in their record, newest first, filtered by kind and date,
a page at a time (docs/protocol.md "The timeline")."""
