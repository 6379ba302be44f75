//! Uploads are jobs: `btyctl upload` names its job, which ends completed
//! with the file's sha256 while the row is already listed hashed; a slow
//! upload is listed with its progress and cancelled by its id (btyctl, or
//! the web's `DELETE /api/jobs/{id}`), leaving nothing in the image root
//! and ending the client's call with CANCELLED.

use bty_e2e::{Daemon, noise, sha256sum, wait_for};
use bty_proto::channel::Target;
use bty_proto::v1::catalog_service_client::CatalogServiceClient;
use bty_proto::v1::upload_image_chunk::Part;
use bty_proto::v1::{UploadHeader, UploadImageChunk};
use serde_json::Value;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio_stream::wrappers::ReceiverStream;

/// The upload jobs `btyctl --json jobs list --kind upload` shows.
fn upload_jobs(d: &Daemon) -> Vec<Value> {
    d.ctl_json(&["jobs", "list", "--kind", "upload"])
        .as_array()
        .expect("an array")
        .clone()
}

/// The event log's kinds about `subject`.
fn logged_kinds(d: &Daemon, subject: &str) -> Vec<String> {
    d.ctl_json(&["events", "list", "--limit", "500"])
        .as_array()
        .expect("an array")
        .iter()
        .filter(|e| e["subject"] == subject)
        .filter_map(|e| e["kind"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn an_upload_is_a_job_that_ends_with_its_sha256_and_a_hashed_row() {
    let d = Daemon::start();
    let bytes = noise(3 << 20, 21);
    let local = d.state_dir.join("local.img");
    std::fs::write(&local, &bytes).unwrap();
    let uploaded = d.ctl_json(&["upload", local.to_str().unwrap(), "--name", "up.img"]);
    let sha = sha256sum(&local);
    assert_eq!(uploaded["sha256"], sha);
    let job_id = uploaded["job_id"].as_str().expect("a job id").to_owned();
    assert!(job_id.starts_with("up-"), "{job_id}");

    // Right after the call returns, without waiting for anything: the job
    // ended completed with the digest, and the row is listed hashed.
    let jobs = upload_jobs(&d);
    let job = jobs
        .iter()
        .find(|j| j["id"] == job_id.as_str())
        .unwrap_or_else(|| panic!("no job {job_id}: {jobs:#?}"));
    assert_eq!(job["kind"], "upload");
    assert_eq!(job["subject"], "up.img");
    assert_eq!(job["state"], "completed");
    assert_eq!(job["sha256"], sha);
    assert_eq!(job["bytes_done"], bytes.len());
    let rows = d.images();
    let row = rows
        .iter()
        .find(|r| r["names"].as_array().unwrap().iter().any(|n| n == "up.img"))
        .unwrap_or_else(|| panic!("up.img not listed: {rows:#?}"));
    assert_eq!(row["sha256"], sha);
    // Only the upload job ran: the file was hashed inline, not again.
    let jobs = d.ctl_json(&["jobs", "list"]);
    let others: Vec<&Value> = jobs
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["kind"] != "upload")
        .collect();
    assert!(others.is_empty(), "{others:#?}");

    let kinds = wait_for(Duration::from_secs(10), "the upload's events", || {
        let kinds = logged_kinds(&d, "up.img");
        kinds
            .iter()
            .any(|k| k == "upload.completed")
            .then_some(kinds)
    });
    assert!(kinds.iter().any(|k| k == "upload.queued"), "{kinds:?}");
}

/// An upload of `name` (declared 64 MiB) that sends 64 KiB every 50 ms
/// until its call ends: the call's result (the status code on error).
fn slow_upload(d: &Daemon, name: &str) -> JoinHandle<Result<String, tonic::Code>> {
    let socket = d.socket.clone();
    let name = name.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().expect("a runtime");
        rt.block_on(async move {
            let channel = Target::Unix(socket).connect().await.expect("btyd answers");
            let mut client = CatalogServiceClient::new(channel);
            let header = UploadImageChunk {
                part: Some(Part::Header(UploadHeader {
                    name,
                    size_bytes: Some(64 << 20),
                })),
            };
            let (chunks, paced) = tokio::sync::mpsc::channel(1);
            // Ends when the call does (its stream is dropped, so a send
            // fails), or after a minute, far longer than the test waits.
            tokio::spawn(async move {
                if chunks.send(header).await.is_err() {
                    return;
                }
                for i in 0..1200u64 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let data = UploadImageChunk {
                        part: Some(Part::Data(noise(64 << 10, i).into())),
                    };
                    if chunks.send(data).await.is_err() {
                        return;
                    }
                }
            });
            client
                .upload_image(ReceiverStream::new(paced))
                .await
                .map(|r| r.into_inner().sha256)
                .map_err(|status| status.code())
        })
    })
}

/// The running upload job of `name`, once it received some bytes.
fn receiving(d: &Daemon, name: &str) -> Value {
    wait_for(Duration::from_secs(30), "the upload to move", || {
        upload_jobs(d).into_iter().find(|j| {
            j["subject"] == name
                && j["state"] == "running"
                && j["bytes_done"].as_u64().is_some_and(|n| n > 0)
        })
    })
}

/// What the image root holds about `name` (the file, its sidecar, a
/// hidden temp file).
fn leftovers(d: &Daemon, name: &str) -> Vec<String> {
    d.image_root_names()
        .into_iter()
        .filter(|n| n.contains(name))
        .collect()
}

/// `id`'s state once it ended.
fn ended(d: &Daemon, id: &str) -> Value {
    wait_for(Duration::from_secs(10), "the upload job to end", || {
        let job = d.job(id);
        (job["state"] != "running").then_some(job)
    })
}

#[test]
fn a_slow_upload_is_listed_moving_and_cancelled_by_its_id() {
    let d = Daemon::start();
    let client = slow_upload(&d, "slow.img");
    let job = receiving(&d, "slow.img");
    let id = job["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("up-"), "{id}");
    assert_eq!(job["bytes_total"], 64 << 20);
    assert!(job["rate_bps"].as_u64().is_some(), "{job:#?}");
    // Something is landing while it runs (a hidden temp file).
    assert!(!leftovers(&d, "slow.img").is_empty());

    let out = d.ctl(&["jobs", "cancel", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result = client.join().unwrap();
    assert_eq!(result, Err(tonic::Code::Cancelled));
    let job = ended(&d, &id);
    assert_eq!(job["state"], "cancelled", "{job:#?}");
    assert!(job["sha256"].is_null(), "{job:#?}");
    assert!(
        leftovers(&d, "slow.img").is_empty(),
        "{:?}",
        d.image_root_names()
    );
    assert!(
        !d.images().iter().any(|r| r["names"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "slow.img")),
        "a cancelled upload is listed"
    );
    let kinds = wait_for(Duration::from_secs(10), "the cancel's event", || {
        let kinds = logged_kinds(&d, "slow.img");
        kinds
            .iter()
            .any(|k| k == "upload.cancelled")
            .then_some(kinds)
    });
    assert!(kinds.iter().any(|k| k == "upload.queued"), "{kinds:?}");

    // The web's cancel route reaches uploads too.
    let client = slow_upload(&d, "slow2.img");
    let id = receiving(&d, "slow2.img")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let origin = d.origin();
    let reply = d.request(
        "DELETE",
        &format!("/api/jobs/{id}"),
        &[("Origin", &origin)],
        b"",
    );
    assert!(reply.status < 300, "{} {}", reply.status, reply.text());
    assert_eq!(client.join().unwrap(), Err(tonic::Code::Cancelled));
    assert_eq!(ended(&d, &id)["state"], "cancelled");
    assert!(leftovers(&d, "slow2.img").is_empty());
}
