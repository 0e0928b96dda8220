//! `docs/openapi.yaml` against the running embedded server: schemathesis
//! (pinned in the venv) generates requests for every operation, public and
//! admin; no answer may be a 5xx, and every status code, content type,
//! header and JSON body must be the one the document describes.

use std::path::{Path, PathBuf};

use super::helpers::spawn_app;

fn schemathesis() -> PathBuf {
    let python = std::env::var("CAREPOST_PYTHON").expect("CAREPOST_PYTHON is set by `make test`");
    Path::new(&python).parent().expect("the venv's bin directory").join("schemathesis")
}

#[tokio::test]
async fn every_response_matches_the_openapi_document_and_none_is_a_server_error() {
    let test = spawn_app().await;
    let document = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.yaml");
    let work = tempfile::tempdir().unwrap();

    let output = tokio::process::Command::new(schemathesis())
        .current_dir(work.path())
        .arg("run")
        .arg(&document)
        .args(["--url", &test.client.base])
        .args(["--header", &format!("Authorization: Bearer {}", test.client.token)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", "40", "--seed", "20261130", "--workers", "2", "--warnings", "off", "--no-color"])
        .output()
        .await
        .expect("schemathesis runs (make test installs it into the venv)");

    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{report}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(report.contains("Tested: 53"), "every operation of the document was exercised:\n{report}");
}
