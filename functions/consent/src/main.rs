//! `consent` Lambda: the public consent endpoint and double opt-in pages. Config, one SdkConfig, adapters, handler; nothing more.

use carepost::runtime::{aws, lambda};

#[tokio::main]
async fn main() -> Result<(), lambda::lambda_http::Error> {
    lambda::init_tracing();
    let built = aws::build_from_env().await?;
    lambda::lambda_http::run(lambda::http_service(carepost::http::consent_router(built.app))).await
}
