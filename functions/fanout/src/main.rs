//! `fanout` Lambda: one segment shard per SQS message, continued in a new
//! message before the time limit. Config, one SdkConfig, adapters, handler.

use carepost::runtime::lambda::aws_lambda_events::event::sqs::SqsEvent;
use carepost::runtime::lambda::lambda_runtime::{self, LambdaEvent, service_fn};
use carepost::runtime::{aws, lambda};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init_tracing();
    let built = aws::build_from_env().await?;
    let (app, queue) = (built.app, built.fanout_queue);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (app, queue) = (app.clone(), queue.clone());
        async move {
            let deadline = lambda::fanout_deadline(event.context.deadline());
            Ok::<_, lambda_runtime::Error>(lambda::handle_fanout(&app, queue.as_ref(), event.payload, deadline).await)
        }
    }))
    .await
}
