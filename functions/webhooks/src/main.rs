//! `webhooks` Lambda: one-click unsubscribe (RFC 8058) and the unsubscribe page. Config, one SdkConfig, adapters, handler; nothing more.

use carepost::runtime::{aws, lambda};

#[tokio::main]
async fn main() -> Result<(), lambda::lambda_http::Error> {
    lambda::init_tracing();
    let built = aws::build_from_env().await?;
    lambda::lambda_http::run(lambda::http_service(carepost::http::webhooks_router(built.app))).await
}
