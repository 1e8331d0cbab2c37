//! The process limits kai needs: a run to hundreds of hosts holds a few file
//! descriptors a host (a kept shell's three pipes, its channel, an upload's), more
//! than the usual soft limit of 1,024 allows at 500 hosts.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// The highest soft limit kai asks for when the hard limit is unlimited.
const ENOUGH: u64 = 1 << 20;

/// Raises the soft limit on open files to the hard limit (what `ulimit -n` could do):
/// a limit kai cannot raise is left as it is. Programs kai starts inherit it.
pub fn raise_open_files() {
    let limit = getrlimit(Resource::Nofile);
    let wanted = limit.maximum.unwrap_or(ENOUGH).min(ENOUGH);
    if limit.current.is_some_and(|current| current < wanted) {
        // Refused (a container's policy): kai runs with the limit it was given.
        let _ = setrlimit(Resource::Nofile, Rlimit { current: Some(wanted), maximum: limit.maximum });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_reaches_the_hard_one() {
        raise_open_files();
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(limit.current, Some(limit.maximum.unwrap_or(ENOUGH).min(ENOUGH)), "{limit:?}");
    }
}
