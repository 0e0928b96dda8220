//! `sender` Lambda: send jobs exactly once at this instance's share of
//! SendRatePerSecond. Settings at init, the application built in the
//! background, handler.

use carepost::runtime::lambda::aws_lambda_events::event::sqs::SqsEvent;
use carepost::runtime::lambda::lambda_runtime::{self, LambdaEvent, service_fn};
use carepost::runtime::{aws, lambda};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init_tracing();
    let settings = lambda::settings_or_exit(aws::settings_from_env());
    let built = aws::start(settings, |built| built);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let built = built.clone();
        async move {
            let built = lambda::ready(&built).await?;
            Ok::<_, lambda_runtime::Error>(
                lambda::handle_send(&built.app, built.send_queue.as_ref(), event.payload).await,
            )
        }
    }))
    .await
}
