"""Laboratory and imaging results: sending systems post FHIR R4 DiagnosticReports (with their
Observations, or a conclusion and a PDF) with an integration credential; the patient and their
doctors read them, with reference ranges, out-of-range values flagged and a value's history."""
