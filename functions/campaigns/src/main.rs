//! `campaigns` Lambda: admin campaigns: create, launch, progress (IAM-authorized). Config, one SdkConfig, adapters, handler; nothing more.

use carepost::runtime::{aws, lambda};

#[tokio::main]
async fn main() -> Result<(), lambda::lambda_http::Error> {
    lambda::init_tracing();
    let built = aws::build_from_env().await?;
    lambda::lambda_http::run(lambda::http_service(carepost::http::campaigns_router(built.app))).await
}
