//! The web's catalog actions end to end against a real btyd (the web crate's
//! own suite runs them against a fake daemon): entry add and remove, hash
//! start and cancel, cache delete by row id, and "Fetch latest catalog".
//! Each checks what changed where it lands: catalog.toml on disk, files in
//! the image root, and the listings.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::origin::Origin;
use bty_e2e::{Daemon, drop_file, noise, percent_encode, wait_for};
use bty_store::digest::sha256_bytes;
use serde_json::{Value, json};
use std::time::Duration;

const JSON: (&str, &str) = ("Content-Type", "application/json");

/// `POST /catalog/entries` with `body`, as an API client.
fn add_entry(d: &Daemon, body: &Value) -> bty_e2e::http::Response {
    d.request(
        "POST",
        "/catalog/entries",
        &[JSON],
        body.to_string().as_bytes(),
    )
}

/// `GET /catalog/entries` as an array.
fn entries(d: &Daemon) -> Vec<Value> {
    let reply = d.get("/catalog/entries");
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json().as_array().cloned().expect("an array")
}

/// The `[[images]]` tables of `<state>/catalog.toml` (none when the file
/// does not exist yet).
fn catalog_on_disk(d: &Daemon) -> Vec<toml::Table> {
    let path = d.state_dir.join("catalog.toml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    let table: toml::Table = text.parse().expect("catalog.toml parses");
    table
        .get("images")
        .and_then(toml::Value::as_array)
        .map(|images| {
            images
                .iter()
                .map(|i| i.as_table().expect("an image table").clone())
                .collect()
        })
        .unwrap_or_default()
}

fn srcs_on_disk(d: &Daemon) -> Vec<String> {
    catalog_on_disk(d)
        .iter()
        .map(|t| t["src"].as_str().expect("src is a string").to_owned())
        .collect()
}

/// `GET /api/images` rows.
fn rows(d: &Daemon) -> Vec<Value> {
    let reply = d.get("/api/images");
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json().as_array().cloned().expect("an array")
}

fn row_named(rows: &[Value], name: &str) -> Option<Value> {
    rows.iter()
        .find(|r| r["names"].as_array().unwrap().iter().any(|n| n == name))
        .cloned()
}

#[test]
fn entries_are_added_and_removed_through_the_web() {
    let origin = Origin::start();
    let bytes = noise(100_000, 7);
    let sha = sha256_bytes(&bytes);
    origin.put("/os/plain.img", noise(50_000, 8));
    origin.put("/os/pinned.img.gz", bytes);
    let d = Daemon::start();

    // By URL alone: the name comes from the URL.
    let plain_src = origin.url("/os/plain.img");
    let added = add_entry(&d, &json!({"image_url": plain_src}));
    assert_eq!(added.status, 201, "{}", added.text());
    let plain = added.json();
    assert_eq!(plain["name"], "plain.img");
    assert_eq!(plain["src"], plain_src.as_str());
    assert_eq!(plain["sha256"], Value::Null);
    assert_eq!(plain["bty_image_ref"], plain["ref"]);

    // With a name and a pinned digest.
    let pinned_src = origin.url("/os/pinned.img.gz");
    let added = add_entry(
        &d,
        &json!({"image_url": pinned_src, "name": "Pinned one", "sha256": sha}),
    );
    assert_eq!(added.status, 201, "{}", added.text());
    let pinned = added.json();
    assert_eq!(pinned["name"], "Pinned one");
    assert_eq!(pinned["sha256"], sha.as_str());
    assert_eq!(pinned["disk_image_sha"], sha.as_str());

    let listed = entries(&d);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["src"], plain_src.as_str());
    assert_eq!(listed[0]["bty_image_ref"], plain["ref"]);
    assert_eq!(listed[1]["name"], "Pinned one");
    assert_eq!(listed[1]["disk_image_sha"], sha.as_str());
    let on_disk = catalog_on_disk(&d);
    assert_eq!(
        srcs_on_disk(&d),
        vec![plain_src.clone(), pinned_src.clone()]
    );
    assert_eq!(on_disk[1]["name"].as_str(), Some("Pinned one"));
    assert_eq!(on_disk[1]["sha256"].as_str(), Some(sha.as_str()));

    // The same URL again is a conflict, and changes nothing.
    let again = add_entry(&d, &json!({"image_url": plain_src, "name": "other"}));
    assert_eq!(again.status, 409, "{}", again.text());
    assert!(again.json()["detail"].is_string(), "{}", again.text());
    // So is a new URL under a name already taken.
    origin.put("/elsewhere/x.img", noise(1000, 9));
    let same_name = add_entry(
        &d,
        &json!({"image_url": origin.url("/elsewhere/x.img"), "name": "Pinned one"}),
    );
    assert_eq!(same_name.status, 409, "{}", same_name.text());
    // Bad URLs are refused with a message naming the problem.
    for (body, needle) in [
        (json!({"image_url": "ftp://example.com/a.img"}), "ftp://"),
        (json!({"image_url": "not a url"}), "not a url"),
        (json!({"image_url": ""}), "image_url"),
    ] {
        let refused = add_entry(&d, &body);
        assert!(
            (400..500).contains(&refused.status),
            "{body}: {} {}",
            refused.status,
            refused.text()
        );
        let detail = refused.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(detail.contains(needle), "{body}: {detail}");
    }
    assert_eq!(entries(&d).len(), 2);
    assert_eq!(srcs_on_disk(&d).len(), 2);

    // Delete by src: gone from the list and from the file.
    let deleted = delete_entry(&d, &percent_encode(&plain_src));
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    let listed = entries(&d);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["src"], pinned_src.as_str());
    assert_eq!(srcs_on_disk(&d), vec![pinned_src.clone()]);
    // Again: nothing left to delete.
    let twice = delete_entry(&d, &percent_encode(&plain_src));
    assert_eq!(twice.status, 404, "{}", twice.text());
    // By bty_image_ref too.
    let by_ref = delete_entry(&d, pinned["bty_image_ref"].as_str().unwrap());
    assert_eq!(by_ref.status, 204, "{}", by_ref.text());
    assert!(entries(&d).is_empty());
    assert!(srcs_on_disk(&d).is_empty());
}

/// `DELETE /catalog/entries?src=SRC` (a src, percent-encoded, or a ref).
fn delete_entry(d: &Daemon, src: &str) -> bty_e2e::http::Response {
    d.request("DELETE", &format!("/catalog/entries?src={src}"), &[], b"")
}

/// The jobs of `GET /catalog/hashes`.
fn hash_jobs(d: &Daemon) -> Vec<Value> {
    let reply = d.get("/catalog/hashes");
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["hashes"]
        .as_array()
        .cloned()
        .expect("an array")
}

/// The newest hash job of `name`.
fn hash_job(d: &Daemon, name: &str) -> Option<Value> {
    hash_jobs(d).into_iter().rfind(|j| j["name"] == name)
}

fn ended(job: &Value) -> bool {
    !matches!(job["status"].as_str(), Some("queued" | "running"))
}

#[test]
fn a_hash_started_through_the_web_gives_the_real_digest() {
    let bytes = noise(6 << 20, 21);
    let d = Daemon::start();
    drop_file(&d.image_root, "disk.img", &bytes);
    let started = d.request(
        "POST",
        "/catalog/hashes",
        &[JSON],
        json!({"name": "disk.img"}).to_string().as_bytes(),
    );
    assert_eq!(started.status, 202, "{}", started.text());
    let job = started.json();
    assert_eq!(job["name"], "disk.img");
    assert_eq!(job["bytes_total"], bytes.len());
    // btyd also queues new files itself; asking while that job runs
    // returns it, so follow the job the POST answered with.
    let id = job["id"].as_str().unwrap().to_owned();
    let done = wait_for(Duration::from_secs(60), "disk.img's hash to end", || {
        hash_jobs(&d)
            .into_iter()
            .find(|j| j["id"] == id.as_str())
            .filter(ended)
    });
    let sha = sha256_bytes(&bytes);
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["sha256"], sha.as_str(), "{done}");
    assert_eq!(done["bytes_done"], bytes.len());
    let sidecar = std::fs::read_to_string(d.image_root.join("disk.img.sha256")).unwrap();
    assert_eq!(sidecar, format!("{sha}  disk.img\n"));
    let row = row_named(&rows(&d), "disk.img").expect("a row for disk.img");
    assert_eq!(row["sha256"], sha.as_str());

    // Names that are no file in the image root are refused.
    let post = |name: &str| {
        d.request(
            "POST",
            "/catalog/hashes",
            &[JSON],
            json!({ "name": name }).to_string().as_bytes(),
        )
    };
    let traversal = post("../etc/passwd");
    assert_eq!(traversal.status, 422, "{}", traversal.text());
    assert!(
        traversal.text().contains("bare file name"),
        "{}",
        traversal.text()
    );
    let missing = post("missing.img");
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert!(missing.text().contains("missing.img"), "{}", missing.text());
}

#[test]
fn a_running_hash_is_cancelled_through_the_web_and_leaves_no_sidecar() {
    let d = Daemon::start_with(|_, root| {
        // Sparse: nothing to write, far more than a debug build hashes in
        // the time this test takes.
        std::fs::File::create(root.join("huge.img"))
            .unwrap()
            .set_len(4 << 30)
            .unwrap();
    });
    // btyd queues new files itself; asking again returns that job.
    let started = d.request(
        "POST",
        "/catalog/hashes",
        &[JSON],
        json!({"name": "huge.img"}).to_string().as_bytes(),
    );
    assert_eq!(started.status, 202, "{}", started.text());
    let id = started.json()["id"].as_str().unwrap().to_owned();
    wait_for(Duration::from_secs(30), "huge.img to be hashing", || {
        hash_job(&d, "huge.img")
            .filter(|j| j["id"] == id.as_str() && j["status"] == "running")
            .filter(|j| j["bytes_done"].as_u64() > Some(0))
    });
    let cancelled = d.request("DELETE", "/catalog/hashes/huge.img", &[], b"");
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    assert_eq!(cancelled.json()["id"], id.as_str());
    let done = wait_for(Duration::from_secs(30), "huge.img's hash to end", || {
        hash_job(&d, "huge.img").filter(ended)
    });
    assert_eq!(done["id"], id.as_str());
    assert_eq!(done["status"], "cancelled", "{done}");
    assert_eq!(done["sha256"], Value::Null, "{done}");
    assert!(done["bytes_done"].as_u64().unwrap() < 4 << 30, "{done}");
    assert!(
        !d.image_root.join("huge.img.sha256").exists(),
        "a cancelled hash wrote a sidecar"
    );
    let row = row_named(&rows(&d), "huge.img").expect("a row for huge.img");
    assert_eq!(row["sha256"], Value::Null, "{row}");
    // Nothing left to cancel.
    let again = d.request("DELETE", "/catalog/hashes/huge.img", &[], b"");
    assert_eq!(again.status, 404, "{}", again.text());
}

#[test]
fn a_cache_is_deleted_by_row_id_and_the_entry_stays() {
    let origin = Origin::start();
    let bytes = noise(2 << 20, 31);
    let sha = sha256_bytes(&bytes);
    origin.put("/img/cached.img", bytes.clone());
    let d = Daemon::start();
    let src = origin.url("/img/cached.img");
    let added = add_entry(&d, &json!({"image_url": src}));
    assert_eq!(added.status, 201, "{}", added.text());

    // Fetch through the web, as the images page's Fetch button does.
    let fetch = d.request(
        "POST",
        "/catalog/downloads",
        &[JSON],
        json!({"id": "cached.img"}).to_string().as_bytes(),
    );
    assert_eq!(fetch.status, 202, "{}", fetch.text());
    let row = wait_for(Duration::from_secs(60), "cached.img to be cached", || {
        row_named(&rows(&d), "cached.img").filter(|r| r["cached"] == true)
    });
    assert_eq!(row["sha256"], sha.as_str());
    let cached_files: Vec<String> = d
        .image_root_names()
        .into_iter()
        .filter(|n| n.starts_with("catalog-") && !n.ends_with(".sha256"))
        .collect();
    assert_eq!(cached_files.len(), 1, "{:?}", d.image_root_names());
    let file = cached_files[0].clone();
    assert_eq!(std::fs::read(d.image_root.join(&file)).unwrap(), bytes);

    let id = row["id"].as_str().unwrap().to_owned();
    let deleted = d.request("DELETE", &format!("/catalog/cache/{id}"), &[], b"");
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    let answer = deleted.json();
    assert_eq!(answer["id"], id.as_str());
    assert_eq!(answer["deleted"], true, "{answer}");
    assert_eq!(answer["local_filename"], file.as_str(), "{answer}");
    assert_eq!(answer["disk_image_sha"], sha.as_str(), "{answer}");

    assert!(
        !d.image_root.join(&file).exists(),
        "the cached file is still there"
    );
    assert!(!d.image_root.join(format!("{file}.sha256")).exists());
    let row = row_named(&rows(&d), "cached.img").expect("the entry's row stays");
    assert_eq!(row["cached"], false, "{row}");
    assert_eq!(row["actions"]["fetch"], true, "{row}");
    // Upstream's list agrees: not cached, offered from its source again.
    let listed = d.get("/images").json();
    let upstream_row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "cached.img")
        .cloned()
        .expect("cached.img in GET /images");
    assert_eq!(upstream_row["cached"], false, "{upstream_row}");
    assert_eq!(upstream_row["url"], src.as_str(), "{upstream_row}");
    let listed = entries(&d);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["src"], src.as_str());
    assert_eq!(srcs_on_disk(&d), vec![src.clone()]);
    // The bytes are no longer served.
    assert_eq!(d.get(&format!("/images/{sha}")).status, 404);
}

#[test]
fn fetch_latest_imports_the_configured_release_catalog() {
    let origin = Origin::start();
    let one = noise(10_000, 41);
    let one_sha = sha256_bytes(&one);
    origin.put("/rel/one.img", one);
    origin.put("/rel/two.img.zst", noise(20_000, 42));
    let release_url = origin.url("/release/catalog.toml");
    let d = Daemon::start_configured(
        &format!("release_catalog_url = \"{release_url}\"\n"),
        |_, _| {},
    );
    let session = d.login();
    let fetch_latest = || {
        bty_e2e::http::request(
            d.web,
            "POST",
            "/ui/catalog/fetch-release",
            &session.headers(),
            b"",
        )
    };

    // Nothing published yet: back to the page with the error, no entries.
    let missing = fetch_latest();
    assert_eq!(missing.status, 303, "{}", missing.text());
    let location = missing.header("location").unwrap_or_default().to_owned();
    assert!(location.starts_with("/ui/images?error="), "{location}");
    assert!(entries(&d).is_empty());

    origin.put(
        "/release/catalog.toml",
        format!(
            "version = 1\n\n\
             [[images]]\nname = \"one.img\"\nsrc = \"{}\"\nsha256 = \"{one_sha}\"\n\
             description = \"the first\"\n\n\
             [[images]]\nname = \"two.img.zst\"\nsrc = \"{}\"\n",
            origin.url("/rel/one.img"),
            origin.url("/rel/two.img.zst")
        )
        .into_bytes(),
    );
    let imported = fetch_latest();
    assert_eq!(imported.status, 303, "{}", imported.text());
    assert_eq!(imported.header("location"), Some("/ui/images"));
    let asked = origin.requests_for("/release/catalog.toml");
    assert!(asked >= 2, "{asked}");

    let listed = entries(&d);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["name"], "one.img");
    assert_eq!(listed[0]["src"], origin.url("/rel/one.img").as_str());
    assert_eq!(listed[0]["disk_image_sha"], one_sha.as_str());
    assert_eq!(listed[0]["description"], "the first");
    assert_eq!(listed[1]["name"], "two.img.zst");
    assert_eq!(listed[1]["format"], "img.zst");
    assert_eq!(
        srcs_on_disk(&d),
        vec![origin.url("/rel/one.img"), origin.url("/rel/two.img.zst")]
    );
    let on_disk = catalog_on_disk(&d);
    assert_eq!(on_disk[0]["sha256"].as_str(), Some(one_sha.as_str()));

    // Without a session's CSRF token the form is refused, and imports
    // nothing.
    let forged = bty_e2e::http::request(
        d.web,
        "POST",
        "/ui/catalog/fetch-release",
        &[("Cookie", &session.cookie), ("Origin", &session.origin)],
        b"",
    );
    assert_eq!(forged.status, 403, "{}", forged.text());
    assert_eq!(origin.requests_for("/release/catalog.toml"), asked);
}
