"""Records: write-back (recommendations), the patient record view, and the audit log."""
