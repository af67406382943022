//! `tessera-firmware` end to end, the real binary: release keys on soft cards (the card policy
//! refuses them unless allowed), build, sign separately, merge, verify (every check printed,
//! non-zero exit on failure), inspect, and a device provisioned, updated, started, confirmed
//! and shown; then installs killed at several moments, the device checked after each.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/fixtures.rs"]
mod fixtures;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use cli::{BIN, ok_with, p, run_with};
use firmware_image::{Device, Slot};
use fixtures::copy_dir;

/// What every run here pins: a fixed build time, so that images are reproducible.
const ENV: &[(&str, &str)] = &[("SOURCE_DATE_EPOCH", "1767225600")];

fn run(args: &[&str], stdin: &str) -> Output {
    run_with(ENV, args, stdin)
}

fn ok(args: &[&str], stdin: &str) -> String {
    ok_with(ENV, args, stdin)
}

/// A soft release card made with `keygen`; its public key in hex.
fn soft_release_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let card = dir.join(format!("{name}.card"));
    let passphrase = format!("{name} passphrase, long enough\n");
    let refused = run(
        &["keygen", "--soft-card", p(&card), "--serial", name],
        &passphrase.repeat(2),
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("soft card"));
    let out = ok(
        &[
            "keygen",
            "--soft-card",
            p(&card),
            "--serial",
            name,
            "--allow-soft-cards",
        ],
        &passphrase.repeat(2),
    );
    let key = out.trim().strip_prefix("release key ").unwrap().to_owned();
    assert_eq!(key.len(), 64, "{out}");
    (card, key)
}

#[test]
fn officers_sign_separately_and_the_merged_image_verifies_and_installs() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (alice, alice_key) = soft_release_key(dir, "alice");
    let (bob, bob_key) = soft_release_key(dir, "bob");
    let keys = dir.join("release-keys.toml");
    fs::write(
        &keys,
        format!("version = 1\nthreshold = 2\nkeys = [\"{alice_key}\", \"{bob_key}\"]\n"),
    )
    .unwrap();

    let root = dir.join("root");
    fixtures::make_root(&root, "1.1.0");
    let template = dir.join("template.toml");
    fs::write(
        &template,
        "product = \"tessera-terminal\"\nhardware_id = \"tessera-t1\"\nversion = \"1.1.0\"\n\
         rollback_index = 2\n",
    )
    .unwrap();
    let image = dir.join("tessera-1.1.0.tsfw");
    let built = ok(
        &[
            "build",
            "--dir",
            p(&root),
            "--template",
            p(&template),
            "--out",
            p(&image),
        ],
        "",
    );
    assert!(built.contains("unsigned"), "{built}");

    let verify = |image: &Path| {
        run(
            &[
                "verify",
                p(image),
                "--keys",
                p(&keys),
                "--hardware-id",
                "tessera-t1",
            ],
            "",
        )
    };
    let unsigned = verify(&image);
    assert!(!unsigned.status.success());
    let text = String::from_utf8_lossy(&unsigned.stdout);
    assert!(
        text.contains("FAILED   signatures: [too-few-signatures]"),
        "{text}"
    );
    assert!(text.contains("ok       payload digest"), "{text}");

    // Each officer signs on their own; a wrong passphrase signs nothing.
    let sig_a = dir.join("alice.sig");
    let sig_b = dir.join("bob.sig");
    let wrong = run(
        &[
            "sign",
            p(&image),
            "--soft-card",
            p(&alice),
            "--allow-soft-cards",
            "--out",
            p(&sig_a),
        ],
        "not the passphrase at all\n",
    );
    assert!(!wrong.status.success());
    assert!(!sig_a.exists());
    for (card, sig, name) in [(&alice, &sig_a, "alice"), (&bob, &sig_b, "bob")] {
        ok(
            &[
                "sign",
                p(&image),
                "--soft-card",
                p(card),
                "--allow-soft-cards",
                "--out",
                p(sig),
            ],
            &format!("{name} passphrase, long enough\n"),
        );
    }
    let one = dir.join("one.tsfw");
    ok(
        &[
            "merge",
            p(&image),
            "--signature",
            p(&sig_a),
            "--out",
            p(&one),
        ],
        "",
    );
    let text = String::from_utf8(verify(&one).stdout).unwrap();
    assert!(
        text.contains("[too-few-signatures] 1 release key(s) signed"),
        "{text}"
    );
    let signed = dir.join("signed.tsfw");
    ok(
        &[
            "merge",
            p(&one),
            "--signature",
            p(&sig_b),
            "--signature",
            p(&sig_a),
            "--out",
            p(&signed),
        ],
        "",
    );
    let out = verify(&signed);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("ok ")).count(),
        7,
        "{text}"
    );
    assert!(
        text.contains("ok       signatures: 2 distinct release key(s) signed, 2 needed (of 2)"),
        "{text}"
    );
    let inspect = ok(&["inspect", p(&signed)], "");
    assert!(inspect.starts_with("UNVERIFIED"), "{inspect}");
    assert!(inspect.contains("file\tx\t"), "{inspect}");

    // A device: provision with an older image, install the signed one, start, confirm.
    let v1_root = dir.join("v1-root");
    fixtures::make_root(&v1_root, "1.0.0");
    let v1_template = dir.join("v1.toml");
    fs::write(
        &v1_template,
        fs::read_to_string(&template)
            .unwrap()
            .replace("1.1.0", "1.0.0")
            .replace("= 2", "= 1"),
    )
    .unwrap();
    let v1 = dir.join("v1.tsfw");
    ok(
        &[
            "build",
            "--dir",
            p(&v1_root),
            "--template",
            p(&v1_template),
            "--out",
            p(&v1),
        ],
        "",
    );
    ok(
        &[
            "merge",
            p(&v1),
            "--signature",
            p(&sign(dir, &v1, &alice, "alice")),
            "--signature",
            p(&sign(dir, &v1, &bob, "bob")),
            "--out",
            p(&v1),
        ],
        "",
    );
    let device = dir.join("device");
    ok(
        &[
            "provision",
            "--root",
            p(&device),
            "--keys",
            p(&keys),
            "--hardware-id",
            "tessera-t1",
            p(&v1),
        ],
        "",
    );
    ok(&["install", "--root", p(&device), p(&signed)], "");
    let status = ok(&["status", "--root", p(&device)], "");
    assert!(status.contains("active\tA\npending\tB\n"), "{status}");
    assert!(status.contains("rollback_floor\t1\n"), "{status}");
    let started = ok(&["start", "--root", p(&device)], "");
    assert!(started.starts_with("B\t1.1.0\t"), "{started}");
    // The launcher runs the slot's program, and only a listed executable.
    let ran = ok(
        &["start", "--root", p(&device), "--exec", "bin/tessera"],
        "",
    );
    assert!(ran.starts_with("tessera 1.1.0\n"), "{ran}");
    let refused = run(
        &["start", "--root", p(&device), "--exec", "etc/tessera.toml"],
        "",
    );
    assert!(!refused.status.success());
    ok(&["confirm", "--root", p(&device)], "");
    let status = ok(&["status", "--root", p(&device)], "");
    assert!(status.contains("active\tB\npending\t-\n"), "{status}");
    assert!(status.contains("rollback_floor\t2\n"), "{status}");
    let refused = run(&["verify", p(&v1), "--root", p(&device)], "");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stdout).contains("[rollback-index-lower]"));
}

fn sign(dir: &Path, image: &Path, card: &Path, name: &str) -> PathBuf {
    let sig = dir.join(format!(
        "{}-{name}.sig",
        image.file_stem().unwrap().to_str().unwrap()
    ));
    ok(
        &[
            "sign",
            p(image),
            "--soft-card",
            p(card),
            "--allow-soft-cards",
            "--out",
            p(&sig),
        ],
        &format!("{name} passphrase, long enough\n"),
    );
    sig
}

#[test]
fn an_install_killed_at_any_moment_leaves_a_bootable_device() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let first = fixtures::release(dir, "v1", "1.0.0", 1, "");
    let base = dir.join("base");
    Device::provision(
        &base,
        fixtures::HARDWARE_ID,
        fixtures::key_set(2, &[1, 2, 3]),
        &first,
    )
    .unwrap();
    // A larger update, so that the install takes long enough to be cut.
    let big = dir.join("v2-root");
    fixtures::make_root(&big, "v2");
    for i in 0..8 {
        fs::write(big.join(format!("assets/blob{i}")), vec![i as u8; 3 << 20]).unwrap();
    }
    let template = dir.join("v2.toml");
    fs::write(
        &template,
        "product = \"tessera-terminal\"\nhardware_id = \"tessera-t1\"\nversion = \"1.1.0\"\n\
         rollback_index = 2\n",
    )
    .unwrap();
    let unsigned = dir.join("v2.unsigned.tsfw");
    firmware_image::image::build::build_image(&big, &template, 0, &unsigned).unwrap();
    let update = fixtures::sign(&unsigned, &[1, 2]);

    let mut cut = 0;
    for delay_ms in [0u64, 2, 5, 10, 20, 40, 60, 90, 130, 200, 300, 500, 1000] {
        let root = dir.join(format!("device-{delay_ms}"));
        copy_dir(&base, &root);
        let mut child = Command::new(BIN)
            .args(["install", "--root", p(&root), p(&update)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let status = child.wait().unwrap();
        cut += usize::from(!status.success());

        let device = Device::open(&root).unwrap();
        let boot = device.start().unwrap();
        if device.status().unwrap().pending.is_some() {
            assert_eq!(
                (boot.slot, boot.manifest.version.to_string()),
                (Slot::B, "1.1.0".to_owned())
            );
        } else {
            assert_eq!(
                (boot.slot, boot.trial),
                (Slot::A, false),
                "killed after {delay_ms} ms"
            );
            assert_eq!(boot.manifest.version.to_string(), "1.0.0");
            device.install(&update).unwrap();
            assert_eq!(device.start().unwrap().slot, Slot::B);
        }
        device.confirm().unwrap();
        fs::remove_dir_all(&root).unwrap();
    }
    assert!(
        cut >= 3,
        "only {cut} installs were cut short; the image is too small"
    );
}
