//! Hardening of a process that holds secrets: both ends of the link do it (the terminal holds
//! its link key, PINs and shares for moments; the HSM every key), and so does the firmware tool
//! (release-card PINs), before anything else.

/// Disables core dumps (a hard limit of zero) and ptrace by other users of this machine (not
/// dumpable), so that a crash or a debugger attached by another user cannot read the secrets in
/// this process's memory. Root can still read them; that is out of scope.
pub fn disable_core_dumps() -> std::io::Result<()> {
    use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )?;
    set_dumpable_behavior(DumpableBehavior::NotDumpable)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_process_is_left_without_core_dumps() {
        super::disable_core_dumps().unwrap();
        let limit = rustix::process::getrlimit(rustix::process::Resource::Core);
        assert_eq!(limit.current, Some(0));
        assert_eq!(limit.maximum, Some(0));
    }
}
