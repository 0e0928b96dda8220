//! `campaigns` Lambda: admin campaigns: create, launch, progress (IAM-authorized). Settings at init, the application built in the background, handler; nothing more.

use carepost::runtime::{aws, lambda};

#[tokio::main]
async fn main() -> Result<(), lambda::lambda_http::Error> {
    lambda::init_tracing();
    let settings = lambda::settings_or_exit(aws::settings_from_env());
    let router = aws::start(settings, |built| lambda::http_service(carepost::http::campaigns_router(built.app)));
    lambda::lambda_http::run(lambda::deferred_http_service(router)).await
}
