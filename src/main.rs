use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    newsdesk::cli::run(newsdesk::cli::Cli::parse())
}
