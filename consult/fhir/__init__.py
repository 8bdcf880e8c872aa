"""The patient's record as FHIR R4 (docs/protocol.md, "FHIR R4 export")."""
