"""What an issued document's printout is called and where it is downloaded: one definition for
the printing service (the download's file name), the FHIR export (a DocumentReference's
attachment) and the record archive (its entry). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from consult.clock import as_utc
from consult.outcome.validity import clinic_day


@dataclass(frozen=True)
class PrintoutFile:
    kind: str  # what the archive's manifest calls it: package, referral, sick_leave
    stem: str
    route: str  # the download route, with {} for the document's id

    def filename(self, document_id: int, issued_at: datetime) -> str:
        """ASCII, the day of issue on the clinic's clock and the id; never the key or the
        access code: a file name stays in the browser's download list."""
        return f"{self.stem}-{clinic_day(as_utc(issued_at)).isoformat()}-{document_id}.pdf"

    def url(self, document_id: int) -> str:
        return self.route.format(document_id)


# The routes are consult/http/routes_printouts.py's.
PACKAGE_FILE: Final = PrintoutFile("package", "e-prescription", "/api/packages/{}/printout.pdf")
REFERRAL_FILE: Final = PrintoutFile("referral", "e-referral", "/api/referrals/{}/printout.pdf")
SICK_LEAVE_FILE: Final = PrintoutFile(
    "sick_leave", "sick-leave", "/api/sick-leaves/{}/printout.pdf"
)
