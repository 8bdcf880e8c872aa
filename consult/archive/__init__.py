"""Download everything: a patient's whole record as one ZIP archive (docs/protocol.md, "The
record as one archive")."""
