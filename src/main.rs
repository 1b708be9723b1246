//! The `sanforge` builder: parse the command line, run, print the error chain.

fn main() -> std::process::ExitCode {
    sanforge::cli::main()
}
