//! `ses-events` Lambda: SES events (EventBridge ► SQS, SNS ► SQS, or
//! EventBridge straight to the function) to suppression and counters.
//! Settings at init, the application built in the background, handler.

use carepost::runtime::lambda::lambda_runtime::{self, LambdaEvent, service_fn};
use carepost::runtime::{aws, lambda};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init_tracing();
    let settings = lambda::settings_or_exit(aws::settings_from_env().and_then(aws::AwsSettings::require_events_queue));
    let built = aws::start(settings, |built| built);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let built = built.clone();
        async move {
            let built = lambda::ready(&built).await?;
            let queue = built.events_queue.as_ref().expect("EVENTS_QUEUE_URL is required at init");
            lambda::handle_events_payload(&built.app, queue.as_ref(), event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
