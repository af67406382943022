//! `tessera firmware` as a script meets it: the real binary, the device root from the
//! configuration's `[firmware]` table or `--root`, and each documented exit status.
#![cfg(feature = "embedded")] // the demo's device and images (firmware-image's `demo` feature)

use std::path::Path;
use std::process::{Command, Output};

use firmware_image::demo::{DEMO_REFUSED, DEMO_UPDATE, prepare};

fn tessera(config: Option<&Path>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command.env_remove("TESSERA_CONFIG");
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    command.args(args).output().expect("tessera runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_root_comes_from_the_configuration_and_each_outcome_has_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let (root, drive) = (dir.path().join("device"), dir.path().join("drive"));
    prepare(&root, &drive, &dir.path().join("scratch")).unwrap();
    let image = |name: &str| drive.join(name).to_str().unwrap().to_owned();

    // No device root anywhere: status 3, saying where to set one.
    let out = tessera(None, &["firmware", "status"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("[firmware]"),
        "{}",
        text(&out.stderr)
    );

    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\n[firmware]\nroot = {:?}\n",
            root.to_str().unwrap()
        ),
    )
    .unwrap();
    let config = Some(config.as_path());
    let out = tessera(config, &["firmware", "status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["version"], "1.0.0");
    assert_eq!(status["state"], "confirmed");

    let out = tessera(config, &["firmware", "verify", &image(DEMO_REFUSED)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("FAILED   signatures: [too-few-signatures]"));
    let out = tessera(config, &["firmware", "verify", &image("missing.tsfw")]);
    assert_eq!(out.status.code(), Some(2));

    let out = tessera(config, &["firmware", "install", &image(DEMO_UPDATE)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("to slot B, pending"));
    let out = tessera(config, &["firmware", "status"]);
    assert!(
        text(&out.stdout).contains("pending\tB"),
        "{}",
        text(&out.stdout)
    );
    // Not started yet: nothing to confirm.
    let out = tessera(config, &["firmware", "confirm"]);
    assert_eq!(out.status.code(), Some(1));

    // --root wins over the configuration.
    let elsewhere = dir.path().join("not-a-device");
    let out = tessera(
        config,
        &["firmware", "status", "--root", elsewhere.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("not-a-device"));

    let help = tessera(None, &["firmware", "--help"]);
    assert!(text(&help.stdout).contains("3   no usable device root"));
}
