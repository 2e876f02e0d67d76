//! Serves a generated Jira site on loopback until interrupted:
//! `cargo run --release --example fake_jira -- PROJECTS ISSUES_PER_PROJECT`.
//! Prints the base URL on the first line (for `JIRA_BASE_URL`).

use fake_jira::demo::large_site;
use fake_jira::{FakeJira, SiteFlavor};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let projects: usize = args.next().map_or(Ok(200), |a| a.parse())?;
    let issues: usize = args.next().map_or(Ok(100), |a| a.parse())?;
    let fake = FakeJira::try_start(large_site(projects, issues, 1), SiteFlavor::Cloud).await?;
    println!("{}", fake.base_url());
    tokio::signal::ctrl_c().await?;
    fake.shutdown().await;
    Ok(())
}
