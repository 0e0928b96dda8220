//! `ses-events` Lambda: SES events (SNS ► SQS) to suppression and counters.
//! Config, one SdkConfig, adapters, handler.

use carepost::runtime::lambda::aws_lambda_events::event::sqs::SqsEvent;
use carepost::runtime::lambda::lambda_runtime::{self, LambdaEvent, service_fn};
use carepost::runtime::{aws, lambda};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init_tracing();
    let built = aws::build_from_env().await?;
    let queue = built.events_queue.ok_or("EVENTS_QUEUE_URL is not set: the events function backs off on its queue")?;
    let app = built.app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (app, queue) = (app.clone(), queue.clone());
        async move { Ok::<_, lambda_runtime::Error>(lambda::handle_events(&app, queue.as_ref(), event.payload).await) }
    }))
    .await
}
