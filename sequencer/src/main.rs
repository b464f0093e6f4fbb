use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cfg = rollup_sequencer::config::Config::parse();
    rollup_sequencer::node::init_tracing(&cfg.log_format);
    match rollup_sequencer::node::run(cfg).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("rollup-node: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
