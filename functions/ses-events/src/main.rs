//! `ses-events` Lambda: SES events (SNS ► SQS, EventBridge ► SQS, or
//! EventBridge straight to the function) to suppression and counters.
//! Config, one SdkConfig, adapters, handler.

use carepost::runtime::lambda::lambda_runtime::{self, LambdaEvent, service_fn};
use carepost::runtime::{aws, lambda};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init_tracing();
    let built = aws::build_from_env().await?;
    let queue = built.events_queue.ok_or("EVENTS_QUEUE_URL is not set: the events function backs off on its queue")?;
    let app = built.app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let (app, queue) = (app.clone(), queue.clone());
        async move {
            lambda::handle_events_payload(&app, queue.as_ref(), event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
