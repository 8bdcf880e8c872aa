"""Download everything, in the browser: the patient presses the button and the browser saves
one ZIP with the record's FHIR Bundle and a manifest naming it."""

from __future__ import annotations

import json
import zipfile

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import OpenPage, assert_no_problems, log_in


@pytest.mark.e2e
def test_the_patient_downloads_their_record_as_one_zip(open_page: OpenPage) -> None:
    patient, problems = open_page("patient")
    patient.goto("/patient/")
    log_in(patient, "anna@demo.test")
    button = patient.get_by_test_id("record-archive")
    expect(button).to_have_text("Download everything")

    with patient.expect_download() as download_info:
        button.click()
    download = download_info.value
    assert download.failure() is None
    assert download.suggested_filename.startswith("medical-record-")
    assert download.suggested_filename.endswith(".zip")
    with zipfile.ZipFile(download.path()) as archive:
        assert archive.testzip() is None
        bundle = json.loads(archive.read("fhir-bundle.json"))
        manifest = json.loads(archive.read("manifest.json"))
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    (me,) = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert me["name"] == [{"text": "Anna Kowalska"}]
    assert manifest["files"][0]["path"] == "fhir-bundle.json"
    assert_no_problems(problems)
