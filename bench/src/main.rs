//! `everynode-bench`: runs the benchmark of bench/README.md and writes its report (`make bench`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", bench::config::USAGE);
        return ExitCode::SUCCESS;
    }
    let config = match bench::config::Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("everynode-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("everynode-bench: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if config.report_only {
        return match bench::rewrite_report(&config.out) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("everynode-bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match rt.block_on(bench::run(&config)) {
        Ok(r) => {
            let failed: usize = r.turns.iter().map(|t| t.errors.len()).sum();
            if failed > 0 {
                eprintln!("everynode-bench: {failed} turn(s) did not finish; see the report");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("everynode-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
