//! A build without the `embedded` feature (the hardened device's): the simulator is not in it,
//! and `tessera demo` says so instead of failing obscurely. scripts/test builds and runs this
//! with `--no-default-features`; in the default build it checks the demo is offered.

use std::process::Command;

const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");

#[test]
fn tessera_says_whether_the_embedded_default_is_in_this_build() {
    assert_eq!(terminal_app::EMBEDDED, cfg!(feature = "embedded"));
    if terminal_app::EMBEDDED {
        let out = Command::new(TESSERA)
            .args(["demo", "--help"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(help.contains("in-process HSM simulator"), "{help}");
        return;
    }
    let out = Command::new(TESSERA)
        .arg("demo")
        .env_remove("TESSERA_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("the embedded default") && stderr.contains("is not in this build"),
        "{stderr}"
    );
    assert!(stderr.contains("tessera pair"), "{stderr}");
}
