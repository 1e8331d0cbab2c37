//! Several commands in one round trip: a shell script that runs each command in a
//! subshell with its output captured, and prints, per command, a header line
//! `KAI-BATCH <index> <exit status> <stdout bytes> <stderr bytes>` followed by exactly
//! those bytes. It stops after the first command that fails. The commands' own text
//! comes from [`Command::to_shell`] (their standard input as a here-document), so
//! nothing is quoted here.

use kai_core::command::{heredoc, Command};

use super::Output;

/// The script for `sh -s` (fed on standard input, so here-documents never show in
/// a process list).
pub fn script(commands: &[Command]) -> String {
    let mut script = String::from("d=$(mktemp -d) || exit 97\ntrap 'rm -rf \"$d\"' EXIT\n");
    for (i, command) in commands.iter().enumerate() {
        let input = command.stdin.as_deref().map_or_else(|| " </dev/null".to_owned(), heredoc);
        script.push_str(&format!(
            "( {} ) >\"$d/o\" 2>\"$d/e\"{input}\nrc=$?\nprintf 'KAI-BATCH %d %d %d %d\\n' {i} \"$rc\" \"$(wc -c <\"$d/o\")\" \"$(wc -c <\"$d/e\")\"\ncat \"$d/o\" \"$d/e\"\n[ \"$rc\" -eq 0 ] || exit 0\n",
            command.to_shell()
        ));
    }
    script
}

/// The outputs of the commands that ran, in order.
pub fn parse(stdout: &str) -> Result<Vec<Output>, String> {
    let bytes = stdout.as_bytes();
    let mut outputs = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let end = bytes[at..].iter().position(|&b| b == b'\n').map(|n| at + n).ok_or("a batch header without its newline")?;
        let header = std::str::from_utf8(&bytes[at..end]).map_err(|_| "a batch header that is not text")?;
        let fields: Vec<&str> = header.split_whitespace().collect();
        let [tag, index, code, out_len, err_len] = fields[..] else { return Err(format!("unexpected batch output {header:?}")) };
        let number = |s: &str| s.parse::<usize>().map_err(|_| format!("unexpected batch header {header:?}"));
        if tag != "KAI-BATCH" || number(index)? != outputs.len() {
            return Err(format!("unexpected batch header {header:?}"));
        }
        let (out_len, err_len) = (number(out_len)?, number(err_len)?);
        let body = end + 1;
        let text = |from: usize, len: usize| {
            bytes.get(from..from + len).map(|b| String::from_utf8_lossy(b).into_owned()).ok_or("the batch output ended early")
        };
        outputs.push(Output {
            code: code.parse::<i32>().ok().filter(|c| *c < 128),
            stdout: text(body, out_len)?,
            stderr: text(body + out_len, err_len)?,
        });
        at = body + out_len + err_len;
    }
    Ok(outputs)
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
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(script(commands).as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        parse(&String::from_utf8_lossy(&out.stdout)).unwrap()
    }

    #[test]
    fn each_command_keeps_its_own_status_and_output() {
        let outputs = run(&[
            Command::new(["printf", "%s", "no newline"]),
            Command::new(["sh", "-c", "echo out; echo err >&2"]),
            Command::new(["cat"]).stdin("KAI-BATCH 9 9 9 9\nfrom stdin\n"),
        ]);
        assert_eq!(outputs.len(), 3);
        assert_eq!((outputs[0].code, outputs[0].stdout.as_str()), (Some(0), "no newline"));
        assert_eq!((outputs[1].stdout.as_str(), outputs[1].stderr.as_str()), ("out\n", "err\n"));
        assert_eq!(outputs[2].stdout, "KAI-BATCH 9 9 9 9\nfrom stdin\n");
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
        assert!(parse("hello\n").is_err());
        assert!(parse("KAI-BATCH 0 0 10 0\nshort").is_err());
    }
}
