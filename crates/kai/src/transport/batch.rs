//! Several commands in one round trip: a shell script that runs each command in a
//! subshell, its output inline, framed by marker lines that carry a fresh random
//! token (so no output can forge one): `<token> <index>` before a command's output on
//! both streams, and `<token>-end <index> <exit status>` after it. It stops after
//! the first command that fails. Nothing but the commands forks. The commands' text
//! comes from [`Command::to_shell`] (standard input as a here-document), so nothing
//! is quoted here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use kai_core::command::{heredoc, Command};

use super::Output;

/// A token no command can know in advance.
pub fn token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let mixed = (nanos as u64)
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("KAI-{:016x}{:08x}", mixed.wrapping_mul(0xBF58_476D_1CE4_E5B9), nanos as u32)
}

/// The script for `sh -s` (fed on standard input, so here-documents never show in
/// a process list).
pub fn script(token: &str, commands: &[Command]) -> String {
    let mut script = String::new();
    for (i, command) in commands.iter().enumerate() {
        let input = command.stdin.as_deref().map_or_else(|| " </dev/null".to_owned(), heredoc);
        script.push_str(&format!(
            "printf '%s %d\\n' {token} {i}; printf '%s %d\\n' {token} {i} >&2
( {} ){input}
rc=$?
             printf '\\n%s-end %d %d\\n' {token} {i} \"$rc\"; printf '\\n%s-end %d\\n' {token} {i} >&2
[ \"$rc\" -eq 0 ] || exit 0
",
            command.to_shell()
        ));
    }
    script
}

/// The outputs of the commands that ran, in order.
pub fn parse(token: &str, stdout: &str, stderr: &str) -> Result<Vec<Output>, String> {
    let outs = sections(token, stdout)?;
    let errs = sections(token, stderr)?;
    if errs.len() != outs.len() {
        return Err(format!("the batch printed {} stdout sections but {} stderr sections", outs.len(), errs.len()));
    }
    Ok(outs.into_iter().zip(errs).map(|((code, stdout), (_, stderr))| Output { code, stdout, stderr }).collect())
}

/// Each command's text on one stream, with its exit status when the stream says it.
fn sections(token: &str, text: &str) -> Result<Vec<(Option<i32>, String)>, String> {
    let mut sections = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let begin = format!("{token} {}\n", sections.len());
        rest = rest.strip_prefix(&begin).ok_or_else(|| format!("the batch output lost its framing before command {}", sections.len()))?;
        let end = format!("\n{token}-end {}", sections.len());
        let at = rest.find(&end).ok_or_else(|| format!("command {} of the batch did not finish", sections.len()))?;
        let body = rest[..at].to_owned();
        let tail = &rest[at + end.len()..];
        let line_end = tail.find('\n').ok_or("a batch end marker without its newline")?;
        let code = tail[..line_end].trim().parse::<i32>().ok().filter(|c| *c < 128);
        sections.push((code, body));
        rest = &tail[line_end + 1..];
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a batch through a real `sh -s`, as sshd would.
    fn run(commands: &[Command]) -> Vec<Output> {
        use std::io::Write;
        let mut child = std::process::Command::new("sh")
            .arg("-s")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let token = token();
        child.stdin.take().unwrap().write_all(script(&token, commands).as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        parse(&token, &String::from_utf8_lossy(&out.stdout), &String::from_utf8_lossy(&out.stderr)).unwrap()
    }

    #[test]
    fn each_command_keeps_its_own_status_and_output() {
        let outputs = run(&[
            Command::new(["printf", "%s", "no newline"]),
            Command::new(["sh", "-c", "echo out; echo err >&2"]),
            Command::new(["cat"]).stdin("KAI-0 1\nKAI-0-end 2 0\nfrom stdin\n"),
        ]);
        assert_eq!(outputs.len(), 3);
        assert_eq!((outputs[0].code, outputs[0].stdout.as_str()), (Some(0), "no newline"));
        assert_eq!((outputs[1].stdout.as_str(), outputs[1].stderr.as_str()), ("out\n", "err\n"));
        assert_eq!(outputs[2].stdout, "KAI-0 1\nKAI-0-end 2 0\nfrom stdin\n");
    }

    #[test]
    fn stops_after_the_first_failure() {
        let outputs = run(&[Command::new(["true"]), Command::new(["sh", "-c", "echo no >&2; exit 3"]), Command::new(["touch", "/never"])]);
        assert_eq!(outputs.len(), 2);
        assert_eq!((outputs[1].code, outputs[1].stderr.as_str()), (Some(3), "no\n"));
    }

    #[test]
    fn a_cd_or_exit_in_one_command_does_not_leak_into_the_next() {
        let outputs = run(&[Command::new(["sh", "-c", "exit 0"]).cwd("/"), Command::new(["pwd"])]);
        assert_ne!(outputs[1].stdout, "/\n");
    }

    #[test]
    fn refuses_garbage() {
        assert!(parse("T", "hello\n", "").is_err());
        assert!(parse("T", "T 0\nno end", "T 0\n\nT-end 0\n").is_err());
        assert_eq!(parse("T", "", "").unwrap(), []);
    }
}
