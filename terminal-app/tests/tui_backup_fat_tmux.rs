//! Device mode in the real `tessera demo` binary, in a real terminal: the demo's FAT drive (a
//! FAT32 image the first start makes in the demo state) is offered on the Backup screen in
//! device mode; a backup written there, read back and verified; listed from the drive and
//! checked. Then, with the demo ended, the standard tools agree: `fsck.fat -n` finds the file
//! system clean, `mdir` lists the backup and `mcopy` copies out the very bytes the terminal
//! verifies with `tessera backup verify`. Skipped, saying so, where tmux, dosfstools or mtools
//! are not installed (scripts/setup installs them).
#![cfg(feature = "embedded")] // the demo HSM is the embedded simulator

use std::path::Path;
use std::process::Command;

use tessera_tests::tmux::Tmux;

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn installed(program: &str) -> bool {
    Command::new(program).arg("--help").output().is_ok()
}

#[test]
fn a_backup_to_the_demo_fat_drive_is_verified_and_the_file_system_is_clean() {
    if !Tmux::available() || !installed("fsck.fat") || !installed("mcopy") {
        eprintln!(
            "SKIPPED: tmux, fsck.fat or mcopy is not installed (scripts/setup installs them)"
        );
        return;
    }
    let binary = env!("CARGO_BIN_EXE_tessera");
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().join("state");
    let state_dir = state_dir.to_str().unwrap();
    let env = ["NO_COLOR=1"];
    let demo = ["--state-dir", state_dir, "demo"];
    let tmux = Tmux::start("tessera-fat-test", 100, 30, &env, binary, &demo);
    tmux.demo_open_first_partition();

    // A PSO login with the two demo cards.
    tmux.demo_pso_login();

    // The Backup screen offers the demo FAT drive in device mode, second after the directory.
    tmux.keys(&["5"]);
    let screen = tmux.wait_for("[ ] demo FAT drive (device mode)");
    assert!(screen.contains("never mounted"), "{screen}");
    tmux.keys(&["Down"]);
    tmux.keys(&["Space"]);
    tmux.wait_for("[x] demo FAT drive (device mode)");
    tmux.keys(&["c"]);
    let screen = tmux.wait_for("Digest");
    assert!(
        screen.contains("✓ Step 2 of 2: read back and verified"),
        "{screen}"
    );
    assert!(screen.contains("(FAT): stored"), "{screen}");
    let file = screen
        .lines()
        .find_map(|l| {
            let at = l.find("File")?;
            l[at + 4..].split_whitespace().next().map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no file name:\n{screen}"));
    assert!(file.ends_with(".tsbk"), "{file}\n{screen}");

    // Listed from the drive and checked offline against the pinned key.
    tmux.escape();
    tmux.wait_for("[ ] demo FAT drive (device mode)");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("✓ verified");
    assert!(screen.contains(&file), "{screen}");
    tmux.escape();
    tmux.escape();
    tmux.keys(&["q"]);
    tmux.wait_for("Quit?");
    tmux.keys(&["y"]);
    tmux.wait_for_exit();

    // The standard tools on the image: a clean file system holding the backup.
    let image = Path::new(state_dir).join("demo/drive.img");
    let img = image.to_str().unwrap();
    let (clean, said) = run("fsck.fat", &["-n", img]);
    assert!(clean, "fsck.fat -n: {said}");
    assert!(!said.contains("Dirty bit"), "{said}");
    let (listed, said) = run("mdir", &["-b", "-i", img, "::"]);
    assert!(listed, "mdir: {said}");
    assert!(said.contains(&file), "mdir: {said}");
    assert!(!said.contains(".partial"), "mdir: {said}");
    let copy = state.path().join(&file);
    let (copied, said) = run(
        "mcopy",
        &["-i", img, &format!("::{file}"), copy.to_str().unwrap()],
    );
    assert!(copied, "mcopy: {said}");
    // The copy, and the file on the image read in device mode, verify offline against the
    // HSM key the demo terminal pinned.
    let terminal = Path::new(state_dir).join("demo/fixture/terminal");
    let terminal = terminal.to_str().unwrap();
    for args in [
        vec!["backup", "verify", copy.to_str().unwrap()],
        vec!["backup", "verify", "--fat-device", img, &file],
    ] {
        let args = [&["--state-dir", terminal][..], &args].concat();
        let (verified, said) = run(binary, &args);
        assert!(verified, "tessera {args:?}: {said}");
        assert!(said.contains("verified: a complete backup"), "{said}");
    }
}
