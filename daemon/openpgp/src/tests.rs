//! Keys and signatures made by the real `gpg`, checked by this crate.

use super::*;
use std::path::Path;
use std::process::Command;

/// A throwaway gpg home with one signing key.
struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    fn new(uid: &str) -> Self {
        Self::with_algo(uid, "ed25519")
    }

    fn with_algo(uid: &str, algo: &str) -> Self {
        let home = tempfile::tempdir().unwrap();
        let g = Self { home };
        g.run(&["--quick-gen-key", uid, algo, "sign", "never"]);
        g
    }

    fn run(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("gpg")
            .args(["--batch", "--quiet", "--pinentry-mode", "loopback"])
            .args(["--passphrase", ""])
            .arg("--homedir")
            .arg(self.home.path())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "gpg {args:?}: {out:?}");
        out.stdout
    }

    fn export(&self, armor: bool) -> Vec<u8> {
        if armor {
            self.run(&["--armor", "--export"])
        } else {
            self.run(&["--export"])
        }
    }

    fn sign(&self, data: &[u8], armor: bool) -> Vec<u8> {
        let file = self.home.path().join("data");
        std::fs::write(&file, data).unwrap();
        let sig = self.home.path().join("data.sig");
        let _ = std::fs::remove_file(&sig);
        let (f, s) = (path(&file), path(&sig));
        let mut args = vec!["--detach-sign", "--output", s.as_str()];
        if armor {
            args.insert(0, "--armor");
        }
        args.push(f.as_str());
        self.run(&args);
        std::fs::read(&sig).unwrap()
    }

    fn fingerprint(&self) -> String {
        let out = String::from_utf8(self.run(&["--with-colons", "--list-keys"])).unwrap();
        out.lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .unwrap()
            .to_owned()
    }
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

const SUMS: &[u8] = b"0000000000000000000000000000000000000000000000000000000000000000  a.img\n";

#[test]
fn signatures_by_a_keyring_key_verify_binary_or_armoured() {
    let gpg = Gpg::new("bty test <t@example.org>");
    for armor in [false, true] {
        let ring = Keyring::parse(&gpg.export(armor)).unwrap();
        assert_eq!(ring.fingerprints(), vec![gpg.fingerprint()]);
        for sig_armor in [false, true] {
            let sig = gpg.sign(SUMS, sig_armor);
            let signer = verify_detached(std::slice::from_ref(&ring), &sig, SUMS).unwrap();
            assert_eq!(signer, gpg.fingerprint());
        }
    }
}

#[test]
fn changed_data_unknown_keys_and_garbage_are_refused() {
    let gpg = Gpg::new("bty test <t@example.org>");
    let other = Gpg::new("other <o@example.org>");
    let ring = Keyring::parse(&gpg.export(false)).unwrap();
    let sig = gpg.sign(SUMS, false);
    let mut changed = SUMS.to_vec();
    changed[0] = b'1';
    let err = verify_detached(std::slice::from_ref(&ring), &sig, &changed).unwrap_err();
    assert!(
        matches!(&err, PgpError::BadSignature { fingerprint, .. } if *fingerprint == gpg.fingerprint()),
        "{err}"
    );
    let foreign = other.sign(SUMS, true);
    let err = verify_detached(std::slice::from_ref(&ring), &foreign, SUMS).unwrap_err();
    assert!(
        matches!(&err, PgpError::UnknownKey { issuers } if issuers.contains(&other.fingerprint())),
        "{err}"
    );
    // Either key of two keyrings will do.
    let both = [ring, Keyring::parse(&other.export(true)).unwrap()];
    assert_eq!(
        verify_detached(&both, &foreign, SUMS).unwrap(),
        other.fingerprint()
    );
    assert!(matches!(
        verify_detached(&both, b"not a signature", SUMS),
        Err(PgpError::Signature(_))
    ));
    assert!(matches!(
        Keyring::parse(b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nzzz\n"),
        Err(PgpError::Keyring(_) | PgpError::NoKeys)
    ));
    assert!(Keyring::parse(b"").is_err());
}

#[test]
fn rsa_keys_verify_and_sha1_signatures_are_refused() {
    let gpg = Gpg::with_algo("bty rsa <r@example.org>", "rsa2048");
    let ring = Keyring::parse(&gpg.export(true)).unwrap();
    let rings = std::slice::from_ref(&ring);
    let sig = gpg.sign(SUMS, false);
    assert_eq!(
        verify_detached(rings, &sig, SUMS).unwrap(),
        gpg.fingerprint()
    );
    let file = gpg.home.path().join("sums");
    let out = gpg.home.path().join("sums.sig");
    std::fs::write(&file, SUMS).unwrap();
    gpg.run(&[
        "--digest-algo",
        "SHA1",
        "--detach-sign",
        "--output",
        &path(&out),
        &path(&file),
    ]);
    let weak = std::fs::read(&out).unwrap();
    let err = verify_detached(rings, &weak, SUMS).unwrap_err();
    assert!(
        matches!(&err, PgpError::BadSignature { reason, .. } if reason.contains("weak hash algorithm SHA1")),
        "{err}"
    );
}
