use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = <convoy::cli::Cli as clap::Parser>::parse();
    let verbose = cli.global.verbose > 0;
    match convoy::run(cli) {
        Ok(code) => code.into(),
        Err(error) => {
            eprint!("{}", convoy::report::render_error(&error, verbose));
            error.exit_code().into()
        }
    }
}
