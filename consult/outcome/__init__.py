"""The visit's outcome, as domain rules: e-prescriptions (products, validity, statuses,
renewal), referrals, sick leave (e-ZLA), the identifiers they carry (PESEL, the doctor's licence
number, the employer's NIP, package keys and access codes) and the catalogues the doctor picks
from (medicinal products, ICD-10). Pure: no storage, no transport."""
