//! `carepost dev`: the whole stack on one local port until Ctrl-C.

use carepost::config::Throughput;
use carepost::runtime::EmbeddedStack;
use clap::Args;

use crate::args::StackArgs;

#[derive(Args, Debug)]
pub struct DevArgs {
    #[command(flatten)]
    pub stack: StackArgs,
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let stack = EmbeddedStack::start(args.stack.config(Throughput::default())?).await?;
    print_urls(&stack);
    tokio::signal::ctrl_c().await?;
    eprintln!("stopping…");
    stack.shutdown().await;
    Ok(())
}

pub fn print_urls(stack: &EmbeddedStack) {
    let base = stack.base_url();
    let t = stack.app.settings.throughput;
    println!("Carepost is serving on {base}");
    println!("  public   POST {base}/v1/consent          consent from forms (JSON or form-encoded)");
    println!("           GET  {base}/confirm/{{token}}     double opt-in page (button POSTs)");
    println!("           GET  {base}/u/{{token}}           unsubscribe page; POST is RFC 8058 one-click");
    println!("  admin    PUT  {base}/v1/contacts/{{external_id}}");
    println!("           POST {base}/v1/campaigns   GET {base}/v1/campaigns/{{id}}   POST …/{{id}}/launch");
    println!("  admin routes need: Authorization: Bearer <token in {}>", stack.admin_token_path.display());
    println!("  database {}", stack.db_path.display());
    if let Some(outbox) = &stack.outbox_dir {
        println!("  outbox   {}", outbox.display());
    }
    println!(
        "  knobs    SendRatePerSecond={} SenderMaxConcurrency={} SenderBatchSize={} FanoutShards={} VisibilityTimeoutSeconds={} MaxReceiveCount={}",
        t.send_rate_per_second,
        t.sender_max_concurrency,
        t.sender_batch_size,
        t.fanout_shards,
        t.visibility_timeout_seconds,
        t.max_receive_count
    );
    println!("Press Ctrl-C to stop.");
}
