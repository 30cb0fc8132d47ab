//! The `brandsim` command: parse arguments, run one command, turn any error into
//! a message on stderr and an exit code (0 ok, 2 bad input or failure,
//! 130 interrupted).

use clap::Parser;

use brandsim::cli::Cli;
use brandsim::commands;

fn main() {
    restore_default_sigpipe();
    let cli = Cli::parse();
    let result = commands::dispatch(cli.command);
    if let Err(error) = result {
        eprintln!("error: {error}");
        std::process::exit(error.exit_code());
    }
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`brandsim run ... | head`)
/// would panic. Restore the default, so the process ends quietly as other
/// command-line tools do.
fn restore_default_sigpipe() {
    // SAFETY: called first thing in main, before any thread exists; resetting a
    // signal's disposition to its default touches no memory of this program.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
