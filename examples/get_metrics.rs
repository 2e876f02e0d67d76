//! Calls a running service: `cargo run --example get_metrics -- SHOP [ADDR]`.
//! Prints the combined figures and the AI impact verdicts.

use jira_dora::proto::GetMetricsRequest;
use jira_dora::proto::dora_metrics_client::DoraMetricsClient;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let project = args.next().unwrap_or_else(|| "SHOP".into());
    let addr = args.next().unwrap_or_else(|| "http://127.0.0.1:50051".into());
    let mut client = DoraMetricsClient::connect(addr).await?;
    let r =
        client.get_metrics(GetMetricsRequest { project_keys: vec![project], ..Default::default() }).await?.into_inner();
    println!("period: {:?}", r.period);
    println!("combined: {:#?}", r.combined);
    if let Some(ai) = r.ai_impact {
        println!("AI impact (rollout {}):", ai.rollout_date);
        for c in ai.comparisons.iter().chain(&ai.ai_vs_other) {
            println!("  - {}", c.sentence);
        }
        if let Some(o) = ai.overall {
            println!("  {}", o.sentence);
        }
    }
    Ok(())
}
