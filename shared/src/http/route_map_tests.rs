//! Every route the SAM template gives a function is one that function's
//! router serves: a route sent to the wrong integration (a handler served
//! by another function, whose role cannot reach its tables) would answer
//! 404 or 405 in a deployed stack while every embedded test passes.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use tower::ServiceExt;

use super::{campaigns_router, consent_router, contacts_router, webhooks_router};
use crate::app::test_support::Harness;

const TEMPLATE: &str = include_str!("../../../infra/template.yaml");

/// (method, path, integration) of every `AWS::ApiGatewayV2::Route`.
fn template_routes() -> Vec<(String, String, String)> {
    TEMPLATE
        .lines()
        .filter_map(|line| {
            let key = line.split("RouteKey: \"").nth(1)?.split('"').next()?;
            let target = line.split("integrations/${").nth(1)?.split('}').next()?;
            let (method, path) = key.split_once(' ')?;
            Some((method.to_owned(), path.to_owned(), target.to_owned()))
        })
        .collect()
}

/// A concrete path for a route pattern: `{id}` and the like filled in.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|part| if part.starts_with('{') { "00000000-0000-4000-8000-000000000000" } else { part })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_route_of_the_template_is_served_by_the_function_it_names() {
    let (app, _keys) = Harness::new().into_shared();
    let routes = template_routes();
    let mut wrong = Vec::new();

    for (method, path, integration) in &routes {
        let router = match integration.as_str() {
            "ConsentIntegration" => consent_router(app.clone()),
            "WebhooksIntegration" => webhooks_router(app.clone()),
            "ContactsIntegration" => contacts_router(app.clone()),
            "CampaignsIntegration" => campaigns_router(app.clone()),
            other => panic!("an integration this test does not know: {other}"),
        };
        // What a route the router does not know answers here (a real 404 stays a 404).
        let router = router.fallback(|| async { StatusCode::IM_A_TEAPOT });
        let request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(concrete(path))
            .header("content-type", "application/json")
            .body(Body::empty())
            .unwrap();
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        // Unknown to the router, or a known path without this method.
        if status == StatusCode::IM_A_TEAPOT || status == StatusCode::METHOD_NOT_ALLOWED {
            wrong.push(format!("{method} {path} -> {integration}: {status}"));
        }
    }

    assert!(routes.len() >= 50, "the template's routes were read: {}", routes.len());
    assert!(wrong.is_empty(), "routes their function does not serve:\n{}", wrong.join("\n"));
}
