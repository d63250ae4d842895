//! `freerouter-simulator`: the upstream simulator as a standalone server, until Ctrl-C.

use freerouter_tests::simulator::Simulator;
use freerouter_tests::simulator::cli::{Command, USAGE};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = match Command::parse(std::env::args().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return Ok(());
        }
        Err(problem) => {
            eprintln!("{problem}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let sim = Simulator::start_on(options.listen).await?;
    options.apply(&sim);
    println!("listening on {}", sim.addr());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
