//! Config resolution: defaults, overrides, systemd directories, refusals.

use super::*;

fn env() -> Environment {
    Environment {
        home: Some("/home/op".into()),
        ..Environment::default()
    }
}

#[test]
fn defaults_for_a_non_root_user_are_local() {
    let c = Config::resolve(FileConfig::default(), &Overrides::default(), &env()).unwrap();
    assert_eq!(c.state_dir, PathBuf::from("/home/op/.local/state/bty"));
    assert_eq!(c.image_root, c.state_dir.join("images"));
    assert_eq!(c.socket, c.state_dir.join("btyd.sock"));
    assert_eq!(c.web_listen, Some("127.0.0.1:8080".parse().unwrap()));
    assert_eq!((c.downloads_max_parallel, c.hashing_max_parallel), (2, 1));
    assert_eq!(c.grpc_tcp, None);
}

#[test]
fn state_dir_flag_puts_the_socket_inside_it() {
    let o = Overrides {
        state_dir: Some("/tmp/s".into()),
        ..Overrides::default()
    };
    let file = FileConfig::parse("[grpc]\nsocket = \"/run/x.sock\"\n", Path::new("t")).unwrap();
    let c = Config::resolve(file, &o, &env()).unwrap();
    assert_eq!(c.socket, PathBuf::from("/tmp/s/btyd.sock"));
}

#[test]
fn systemd_directories_are_used() {
    let e = Environment {
        state_directory: Some("/var/lib/bty".into()),
        runtime_directory: Some("/run/bty".into()),
        is_root: true,
        ..env()
    };
    let c = Config::resolve(FileConfig::default(), &Overrides::default(), &e).unwrap();
    assert_eq!(c.socket, PathBuf::from("/run/bty/btyd.sock"));
    assert_eq!(c.image_root, PathBuf::from("/var/lib/bty/images"));
}

#[test]
fn rejects_unknown_keys_and_bad_values() {
    let err = FileConfig::parse("bogus = 1\n", Path::new("f.toml")).unwrap_err();
    assert!(err.to_string().contains("bogus"), "{err}");
    let file = FileConfig::parse("[hashing]\nmax_parallel = 0\n", Path::new("f")).unwrap();
    let err = Config::resolve(file, &Overrides::default(), &env()).unwrap_err();
    assert!(err.to_string().contains("hashing.max_parallel"), "{err}");
    let o = Overrides {
        web_listen: Some("localhost".into()),
        ..Overrides::default()
    };
    assert!(Config::resolve(FileConfig::default(), &o, &env()).is_err());
}

#[test]
fn the_event_history_is_bounded() {
    let c = Config::resolve(FileConfig::default(), &Overrides::default(), &env()).unwrap();
    assert_eq!(c.events_history, crate::events::DEFAULT_CAPACITY);
    assert_eq!(c.event_log_path(), c.state_dir.join("events.jsonl"));
    let file = FileConfig::parse("[events]\nhistory = 20\n", Path::new("f")).unwrap();
    let c = Config::resolve(file, &Overrides::default(), &env()).unwrap();
    assert_eq!(c.events_history, 20);
    for bad in ["0", "100001"] {
        let file =
            FileConfig::parse(&format!("[events]\nhistory = {bad}\n"), Path::new("f")).unwrap();
        let err = Config::resolve(file, &Overrides::default(), &env()).unwrap_err();
        assert!(err.to_string().contains("events.history"), "{err}");
    }
}

#[test]
fn web_can_be_turned_off() {
    let o = Overrides {
        web_listen: Some("off".into()),
        ..Overrides::default()
    };
    let c = Config::resolve(FileConfig::default(), &o, &env()).unwrap();
    assert_eq!(c.web_listen, None);
}

#[test]
fn upstream_variables_sit_between_the_file_and_the_flags() {
    let file = FileConfig::parse(
        "state_dir = \"/srv/file\"\nimage_root = \"/srv/file-images\"\n",
        Path::new("t.toml"),
    )
    .unwrap();
    let e = Environment {
        upstream: UpstreamVars::read(|k| match k {
            "BTY_STATE_DIR" => Some("/srv/env".to_owned()),
            "BTY_IMAGE_ROOT" => Some("/srv/env-images".to_owned()),
            _ => None,
        }),
        state_directory: Some("/var/lib/systemd-said".into()),
        ..env()
    };
    let o = Overrides {
        image_root: Some("/srv/flag-images".into()),
        ..Overrides::default()
    };
    let c = Config::resolve(file, &o, &e).unwrap();
    assert_eq!(c.state_dir, PathBuf::from("/srv/env"));
    assert_eq!(c.catalog_path, PathBuf::from("/srv/env/catalog.toml"));
    assert_eq!(c.image_root, PathBuf::from("/srv/flag-images"));
}

const P256_PUB: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEi4x8jmGNB0EoT/bdRcPLJElMtdEe
C7xuhK7zzgF4s/8k5fbGSxAhjJuYgg1CboIaWgXcXwY2TaTGYmTFXqIlyw==
-----END PUBLIC KEY-----
";

fn trust_config(dir: &Path, keys: &str, require: &str) -> Result<Config, ConfigError> {
    let text = format!(
        "[[trust]]\nmatch = \"oras://r.lab:5000/images/\"\nrequire = \"{require}\"\nkeys = [{keys}]\n"
    );
    let file = FileConfig::parse(&text, &dir.join("btyd.toml")).unwrap();
    Config::resolve(file, &Overrides::default(), &env())
}

#[test]
fn trust_rules_load_their_keys_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("lab.pub");
    std::fs::write(&good, P256_PUB).unwrap();
    let c = trust_config(dir.path(), &format!("{good:?}"), "signed").unwrap();
    assert_eq!(c.trust.len(), 1);
    assert_eq!(c.trust[0].prefix, "oras://r.lab:5000/images/");
    assert_eq!(c.trust[0].keys[0].fingerprint().len(), 16);

    // A bad key file stops start-up, naming the file and why.
    let bad = dir.path().join("bad.pub");
    std::fs::write(
        &bad,
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let missing = dir.path().join("missing.pub");
    for (path, why) in [(&bad, "malformed DER"), (&missing, "No such file")] {
        let err = trust_config(dir.path(), &format!("{good:?}, {path:?}"), "signed")
            .unwrap_err()
            .to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains(why), "{err}");
    }
    // Only "signed" is a policy; a rule needs keys.
    let err = trust_config(dir.path(), &format!("{good:?}"), "any").unwrap_err();
    assert!(err.to_string().contains("trust.require"), "{err}");
    let err = trust_config(dir.path(), "", "signed").unwrap_err();
    assert!(err.to_string().contains("trust.keys"), "{err}");
    // match must be an oras:// prefix with a host.
    let text = format!("[[trust]]\nmatch = \"oras://\"\nrequire = \"signed\"\nkeys = [{good:?}]\n");
    let file = FileConfig::parse(&text, Path::new("t")).unwrap();
    let err = Config::resolve(file, &Overrides::default(), &env()).unwrap_err();
    assert!(err.to_string().contains("trust.match"), "{err}");
}

/// An OpenPGP keyring made by `gpg` (binary, as `gpg --export` writes it).
fn gpg_keyring(dir: &Path) -> Vec<u8> {
    let home = dir.join("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    let gpg = |args: &[&str]| {
        let out = std::process::Command::new("gpg")
            .args([
                "--batch",
                "--quiet",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ])
            .arg("--homedir")
            .arg(&home)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        out.stdout
    };
    gpg(&[
        "--quick-gen-key",
        "bty test <t@example.org>",
        "ed25519",
        "sign",
        "never",
    ]);
    gpg(&["--export"])
}

fn http_trust_config(dir: &Path, rule: &str) -> Result<Config, ConfigError> {
    let text = format!("[[trust]]\nrequire = \"signed\"\n{rule}\n");
    let file = FileConfig::parse(&text, &dir.join("btyd.toml")).unwrap();
    Config::resolve(file, &Overrides::default(), &env())
}

#[test]
fn http_trust_rules_load_openpgp_keyrings_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("debian.gpg");
    std::fs::write(&ring, gpg_keyring(dir.path())).unwrap();
    let c = http_trust_config(
        dir.path(),
        &format!("match = \"HTTPS://Cloud.Example.org/images/\"\nkeyrings = [{ring:?}]"),
    )
    .unwrap();
    assert!(c.trust.is_empty());
    assert_eq!(c.http_trust.len(), 1);
    // Compared with canonical sources, so canonical itself.
    assert_eq!(c.http_trust[0].prefix, "https://cloud.example.org/images/");

    // A bad or missing keyring stops start-up, naming the file.
    let bad = dir.path().join("bad.gpg");
    std::fs::write(&bad, "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n").unwrap();
    let missing = dir.path().join("missing.gpg");
    for path in [&bad, &missing] {
        let err = http_trust_config(
            dir.path(),
            &format!("match = \"https://h/\"\nkeyrings = [{ring:?}, {path:?}]"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("https://h/"), "{err}");
    }
    // Each scheme takes its own kind of key, and needs one.
    let pem = dir.path().join("lab.pub");
    std::fs::write(&pem, P256_PUB).unwrap();
    for (rule, key) in [
        (
            format!("match = \"https://h/\"\nkeys = [{pem:?}]"),
            "trust.keys",
        ),
        ("match = \"https://h/\"".to_owned(), "trust.keyrings"),
        (
            format!("match = \"oras://r/x\"\nkeys = [{pem:?}]\nkeyrings = [{ring:?}]"),
            "trust.keyrings",
        ),
        (
            format!("match = \"https://\"\nkeyrings = [{ring:?}]"),
            "trust.match",
        ),
        (
            format!("match = \"ftp://h/\"\nkeyrings = [{ring:?}]"),
            "trust.match",
        ),
    ] {
        let err = http_trust_config(dir.path(), &rule)
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{rule}: {err}");
    }
}
