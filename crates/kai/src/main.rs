//! `kai`: see the library ([`kai::main`]).

fn main() -> std::process::ExitCode {
    kai::main()
}
