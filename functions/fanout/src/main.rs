//! `fanout` Lambda: one segment shard per SQS message, continued in a new
//! message before the time limit; and, every minute on the stack's
//! schedule, the journey timer's sweep of due enrolments. Settings at
//! init, the application built in the background, handler.

use carepost::runtime::lambda::lambda_runtime::{self, LambdaEvent, service_fn};
use carepost::runtime::{aws, lambda};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init_tracing();
    let settings = lambda::settings_or_exit(aws::settings_from_env());
    let built = aws::start(settings, |built| built);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let built = built.clone();
        async move {
            let deadline = lambda::fanout_deadline(event.context.deadline());
            let built = lambda::ready(&built).await?;
            lambda::handle_fanout_payload(&built.app, built.fanout_queue.as_ref(), event.payload, deadline)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
