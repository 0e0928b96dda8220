//! A `lambda_http` hello-world: the smallest HTTP function, the baseline
//! `make bench-init` compares each Carepost function's cold start with.

use carepost::runtime::lambda::lambda_http::{self, Body, Error, Request, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_request: Request| async { Ok::<_, Error>(Response::new(Body::from("hello"))) })).await
}
