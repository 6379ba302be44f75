//! Catalogs at scale against a real btyd: a 100 000-row listing reaches
//! btyctl and every web view whole, and the one catalog size limit
//! (`[catalog] max_catalog_bytes`) holds for imports, writes and loading.

use bty_e2e::Daemon;
use std::collections::HashSet;

/// catalog.toml text of `n` entries named `nightly-<i>.img.zst`.
fn catalog_of(n: usize, tag: &str) -> String {
    let mut text = String::from("version = 1\n");
    for i in 0..n {
        text.push_str(&format!(
            "\n[[images]]\nname = \"{tag}-{i:06}.img.zst\"\nsrc = \"https://builds.example/{tag}/{i:06}/disk.img.zst\"\n"
        ));
    }
    text
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "btyctl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whole listings of 100 000 rows: several times the 4 MiB message cap a
/// single reply used to hit at ~40 000 rows.
#[test]
fn a_100000_row_listing_reaches_btyctl_and_the_web_whole() {
    const ROWS: usize = 100_000;
    let text = catalog_of(ROWS, "nightly");
    let d = Daemon::start_with(|state, _| {
        std::fs::write(state.join("catalog.toml"), &text).unwrap();
    });
    let expected: HashSet<String> = (0..ROWS)
        .map(|i| format!("nightly-{i:06}.img.zst"))
        .collect();

    // btyctl --json images list: every row, once.
    let rows = d.images();
    let names: HashSet<String> = rows
        .iter()
        .map(|r| r["names"][0].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(rows.len(), ROWS);
    assert_eq!(names, expected);

    // The upstream-compatible GET /images, streamed.
    let reply = d.get("/images");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let entries = reply.json();
    let entries = entries.as_array().expect("a JSON array");
    assert_eq!(entries.len(), ROWS);
    let names: HashSet<String> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, expected);

    // The row JSON of the web API.
    let reply = d.get("/api/images");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json().as_array().map(Vec::len), Some(ROWS));

    // The images page: the last page shows the last rows and the total.
    let reply = d.get("/ui/images?page=1000&per_page=100");
    assert_eq!(reply.status, 200);
    let page = reply.text();
    assert!(
        page.contains("rows 99901&ndash;100000 of 100000"),
        "{}",
        &page[..page.len().min(3000)]
    );
    assert_eq!(page.matches("<tr data-row-name=").count(), 100);
    assert!(page.contains("data-row-name=\"nightly-099999.img.zst\""));
    // A page past the end shows the last one.
    let past = d.get("/ui/images?page=5000&per_page=100").text();
    assert!(past.contains("rows 99901&ndash;100000 of 100000"));
    // Search narrows on the daemon; one row by its id.
    let found = d.get("/ui/images?q=nightly-04242").text();
    assert!(found.contains("rows 1&ndash;10 of 10"), "search");
    let id = rows[12_345]["id"].as_str().unwrap();
    let one = d.get(&format!("/api/images?id={id}")).json();
    assert_eq!(one.as_array().map(Vec::len), Some(1));
    assert_eq!(one[0]["id"], id);
}

/// Small limit for the tests below: a few hundred entries.
const LIMIT: usize = 32 * 1024;

fn limited() -> String {
    format!("[catalog]\nmax_catalog_bytes = {LIMIT}\n")
}

fn import(d: &Daemon, dir: &std::path::Path, name: &str, text: &str) -> std::process::Output {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the catalog to import");
    d.ctl(&[
        "catalog",
        "import",
        path.to_str().expect("a UTF-8 temp path"),
    ])
}

#[test]
fn an_import_past_the_limit_is_refused_and_the_catalog_is_unchanged() {
    let d = Daemon::start_configured(&limited(), |_, _| {});
    let dir = tempfile::tempdir().unwrap();
    ok(&import(
        &d,
        dir.path(),
        "first.toml",
        &catalog_of(150, "first"),
    ));
    let catalog = d.state_dir.join("catalog.toml");
    let before = std::fs::read(&catalog).unwrap();
    assert!(before.len() < LIMIT);

    // Fits the limit alone, not together with what is stored.
    let second = catalog_of(150, "second");
    assert!(second.len() < LIMIT);
    let out = import(&d, dir.path(), "second.toml", &second);
    assert!(!out.status.success(), "an import past the limit succeeded");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("max_catalog_bytes") && err.contains(&LIMIT.to_string()),
        "the error names the limit: {err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(
        std::fs::read(&catalog).unwrap(),
        before,
        "catalog.toml changed"
    );
    assert_eq!(d.images().len(), 150, "the listing changed");

    // Larger than the limit by itself: refused before it is parsed.
    let out = import(&d, dir.path(), "huge.toml", &catalog_of(400, "huge"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("over the {LIMIT}-byte limit (max_catalog_bytes)")),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&catalog).unwrap(),
        before,
        "catalog.toml changed"
    );
}

#[test]
fn a_daemon_restarted_on_the_largest_catalog_it_accepted_loads_it() {
    let mut d = Daemon::start_configured(&limited(), |_, _| {});
    let dir = tempfile::tempdir().unwrap();
    // Grow the catalog in imports of 20 until btyd refuses one, then by
    // single entries until it refuses again: the largest it accepts.
    let batch = until_the_limit_refuses(|batch| {
        import(
            &d,
            dir.path(),
            "batch.toml",
            &catalog_of(20, &format!("b{batch}")),
        )
    });
    let single = until_the_limit_refuses(|single| {
        let url = format!("https://builds.example/single/{single:04}.img.zst");
        d.ctl(&["entries", "add", &url])
    });
    let catalog = d.state_dir.join("catalog.toml");
    let size = std::fs::metadata(&catalog).unwrap().len() as usize;
    assert!(
        size <= LIMIT,
        "wrote {size} bytes, over the {LIMIT}-byte limit"
    );
    assert!(
        size > LIMIT - 200,
        "{size} bytes: the catalog was not filled"
    );
    let listed = d.images().len();
    assert_eq!(listed, batch * 20 + single);

    d.restart();
    assert_eq!(
        d.images().len(),
        listed,
        "the restarted daemon lost entries"
    );
    assert!(
        !d.log().contains("catalog is read-only"),
        "the restarted daemon could not load its own catalog:\n{}",
        d.log()
    );
}

/// Run `attempt(0)`, `attempt(1)`, … until one is refused, which must be
/// for the catalog size limit; how many were accepted.
fn until_the_limit_refuses(mut attempt: impl FnMut(usize) -> std::process::Output) -> usize {
    for n in 0..1000 {
        let out = attempt(n);
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("max_catalog_bytes"),
                "refused for another reason: {err}"
            );
            return n;
        }
    }
    panic!("the limit never applied");
}
