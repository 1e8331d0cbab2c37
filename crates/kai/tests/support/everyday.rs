//! Everyday use: protected environments, a real terminal, git.

use super::*;

impl World {
    /// kai's HOME (git run by a test uses it too, so no user configuration leaks in).
    pub fn home_dir(&self) -> &Path {
        &self.home
    }

    /// Makes the environment protected (`protected = true` at the top of its file).
    pub fn protect(&self) {
        let path = self.root.join(format!("environments/{ENV}.toml"));
        let text = read(&path);
        fs::write(&path, format!("protected = true\n{text}")).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Runs `kai --config <root> ARGS...` in a real terminal (a pty made by `script`
    /// from util-linux), typing `input` into it; `vars` are added to the pinned
    /// environment. The run's stdout is everything the terminal showed (stdout and
    /// stderr together, `\r\n` made `\n`); its stderr is script's own.
    pub fn kai_in_terminal(&self, args: &[&str], input: &str, vars: &[(&str, &str)]) -> Run {
        self.kai_in_terminal_after(args, input, vars, Duration::ZERO)
    }

    /// [`kai_in_terminal`](Self::kai_in_terminal), typing `input` only after `delay`
    /// (after kai's prompt, as a person would: what is typed before is echoed by the
    /// terminal whatever kai does).
    pub fn kai_in_terminal_after(&self, args: &[&str], input: &str, vars: &[(&str, &str)], delay: Duration) -> Run {
        let quote = kai_core::shell::command::quote;
        let mut line = format!("{} --config {}", quote(KAI), quote(&self.root.display().to_string()));
        for arg in args {
            line.push(' ');
            line.push_str(&quote(arg));
        }
        let mut command = Command::new("script");
        self.pinned(command.args(["-q", "-e", "-c", &line, "/dev/null"]))
            .env("TERM", "xterm")
            .env("SHELL", "/bin/sh")
            .envs(vars.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = command.spawn().expect("script (util-linux) starts");
        let mut stdin = child.stdin.take().expect("script's stdin");
        std::thread::sleep(delay);
        stdin.write_all(input.as_bytes()).expect("type into the terminal");
        drop(stdin);
        let (mut out, mut err) = (child.stdout.take().expect("script's stdout"), child.stderr.take().expect("script's stderr"));
        let reader = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = out.read_to_end(&mut text);
            text
        });
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for script") {
                break status;
            }
            if started.elapsed() > KAI_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("kai {} in a terminal ran longer than {KAI_TIMEOUT:?}", args.join(" "));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let shown = reader.join().expect("the terminal reader");
        let mut stderr = String::new();
        let _ = err.read_to_string(&mut stderr);
        Run {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&shown).replace("\r\n", "\n"),
            stderr,
            took: started.elapsed(),
        }
    }

    /// Runs `kai --config <root> ARGS...` with `input` on its standard input (a pipe).
    pub fn kai_with_input(&self, args: &[&str], input: &str) -> Run {
        let started = Instant::now();
        let mut child = self
            .pinned(Command::new(KAI).arg("--config").arg(&self.root).args(args))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kai starts");
        let mut stdin = child.stdin.take().expect("kai's stdin");
        stdin.write_all(input.as_bytes()).expect("kai reads its input");
        drop(stdin);
        let out = child.wait_with_output().expect("kai ends");
        Run {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took: started.elapsed(),
        }
    }
}
