//! `ses-events` Lambda: SES events (SNS ► SQS) to suppression and counters.
//! Config, one SdkConfig, adapters, handler.

use carepost::runtime::lambda::aws_lambda_events::event::sqs::SqsEvent;
use carepost::runtime::lambda::lambda_runtime::{self, LambdaEvent, service_fn};
use carepost::runtime::{aws, lambda};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init_tracing();
    let app = aws::build_from_env().await?.app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let app = app.clone();
        async move { Ok::<_, lambda_runtime::Error>(lambda::handle_events(&app, event.payload).await) }
    }))
    .await
}
