//! One client for every stack: every admin command sends its requests
//! through `AdminConnection`, which carries the local stack's bearer token
//! or signs each request with AWS SigV4 for `execute-api` (credentials from
//! the AWS SDK's own chain: environment, `--profile`, SSO, instance roles).
//! Which one is decided once, before anything is sent (`targets::plan`).

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, bail};
use aws_config::BehaviorVersion;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_smithy_runtime_api::client::identity::Identity;
use clap::Args;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::targets::{self, AuthMode, Endpoint, Flags, PlannedAuth, TokenSource};

/// The signing name of API Gateway.
const SERVICE: &str = "execute-api";

/// Human tables or JSON for scripts.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    #[default]
    Table,
    Json,
}

/// Where the admin API is and how to authenticate, AWS CLI style. Every flag
/// can go before or after the subcommand.
#[derive(Args, Debug, Clone)]
pub struct ConnectionArgs {
    /// A named target of the targets file (e.g. local, staging, production).
    #[arg(long, global = true, env = "CAREPOST_TARGET")]
    pub target: Option<String>,
    /// The targets file (TOML). Default: ~/.config/carepost/targets.toml.
    #[arg(long, global = true, env = "CAREPOST_TARGETS_FILE", value_name = "FILE")]
    pub targets_file: Option<PathBuf>,
    /// Base URL of the stack's API (default: the local stack, http://127.0.0.1:8787).
    #[arg(long = "endpoint-url", visible_alias = "url", global = true, env = "CAREPOST_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Read the API URL from this CloudFormation stack's `ApiEndpoint` output.
    #[arg(long, global = true, value_name = "NAME")]
    pub stack: Option<String>,
    /// The AWS profile for credentials and region (as the AWS CLI's --profile).
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// The AWS region to sign for (default: the profile's or AWS_REGION, else the URL's).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// token (the local stack's bearer token) or sigv4. Default: the token when
    /// one is known (flag, target, or a loopback URL's data dir), else sigv4.
    #[arg(long, global = true, value_enum)]
    pub auth: Option<AuthMode>,
    /// Admin bearer token; read from `<data dir>/admin-token` when not given.
    #[arg(long, global = true, env = "CAREPOST_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The local stack's data directory (for its admin token).
    #[arg(long, global = true, env = "CAREPOST_DATA_DIR", default_value = ".carepost")]
    pub data_dir: PathBuf,
    /// table (default) or json (for scripts).
    #[arg(long, global = true, value_enum, default_value = "table")]
    pub output: Output,
}

enum Auth {
    Token(String),
    Sigv4 { credentials: SharedCredentialsProvider, region: String, profile: Option<String> },
}

/// A connection to one stack's admin API.
pub struct AdminConnection {
    pub url: String,
    pub output: Output,
    auth: Auth,
    http: reqwest::Client,
}

/// A non-2xx answer, kept apart so callers can tell a refusal from a failure.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiRefusal {
    pub status: StatusCode,
    pub body: Value,
    message: String,
}

fn read_token(source: TokenSource) -> anyhow::Result<String> {
    match source {
        TokenSource::Value(token) => Ok(token),
        TokenSource::File(path) => {
            let token = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "no --token given and {} cannot be read (is this the local stack's data dir? \
                     for a deployed stack use --auth sigv4)",
                    path.display()
                )
            })?;
            Ok(token.trim().to_owned())
        }
    }
}

async fn sdk_config(profile: Option<&str>, region: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    }
    loader.load().await
}

/// A CloudFormation stack as `DescribeStacks` tells it.
pub async fn describe_stack(
    config: &aws_config::SdkConfig,
    stack: &str,
) -> anyhow::Result<aws_sdk_cloudformation::types::Stack> {
    use aws_sdk_cloudformation::error::ProvideErrorMetadata;
    let client = aws_sdk_cloudformation::Client::new(config);
    let answer =
        client.describe_stacks().stack_name(stack).send().await.map_err(aws_sdk_cloudformation::Error::from).map_err(
            |e| match e.meta().message() {
                // CloudFormation's way of saying there is no such stack.
                Some(m) if m.contains("does not exist") => anyhow::anyhow!(
                    "--stack {stack}: no such stack in this account and region (give --region or --profile?)"
                ),
                _ => anyhow::Error::new(e).context(format!("--stack {stack}: cannot describe the stack")),
            },
        )?;
    answer.stacks().first().cloned().with_context(|| format!("--stack {stack}: no such stack"))
}

/// The `ApiEndpoint` output of a CloudFormation stack.
async fn stack_url(config: &aws_config::SdkConfig, stack: &str) -> anyhow::Result<String> {
    describe_stack(config, stack)
        .await?
        .outputs()
        .iter()
        .find(|o| o.output_key() == Some("ApiEndpoint"))
        .and_then(|o| o.output_value())
        .map(str::to_owned)
        .with_context(|| format!("--stack {stack}: the stack has no ApiEndpoint output (is it a Carepost stack?)"))
}

impl ConnectionArgs {
    fn flags(&self) -> Flags {
        Flags {
            target: self.target.clone(),
            endpoint_url: self.endpoint_url.clone(),
            stack: self.stack.clone(),
            region: self.region.clone(),
            profile: self.profile.clone(),
            auth: self.auth,
            token: self.token.clone(),
            data_dir: self.data_dir.clone(),
        }
    }

    fn plan(&self) -> anyhow::Result<targets::Plan> {
        let target = match &self.target {
            Some(name) => {
                let file = self.targets_file.clone().or_else(targets::default_targets_file);
                Some(targets::load_target(name, file.as_deref())?)
            }
            None => None,
        };
        targets::plan(&self.flags(), target.as_ref())
    }

    /// The AWS account itself (for `doctor`): the SDK config of the
    /// profile and region, and the stack named by `--stack` or the target.
    pub async fn aws_account(&self) -> anyhow::Result<(aws_config::SdkConfig, Option<String>)> {
        let plan = self.plan()?;
        let stack = match plan.endpoint {
            Endpoint::Stack(stack) => Some(stack),
            Endpoint::Url(_) => None,
        };
        Ok((sdk_config(plan.profile.as_deref(), plan.region.as_deref()).await, stack))
    }

    /// Resolves the target, the endpoint (a stack's output if asked) and the
    /// credentials; nothing is sent to the admin API yet.
    pub async fn connect(&self) -> anyhow::Result<AdminConnection> {
        let plan = self.plan()?;
        let needs_aws = plan.auth == PlannedAuth::Sigv4 || matches!(plan.endpoint, Endpoint::Stack(_));
        let config =
            if needs_aws { Some(sdk_config(plan.profile.as_deref(), plan.region.as_deref()).await) } else { None };
        let url = match (&plan.endpoint, &config) {
            (Endpoint::Url(url), _) => url.clone(),
            (Endpoint::Stack(stack), Some(config)) => stack_url(config, stack).await?,
            (Endpoint::Stack(_), None) => unreachable!("a stack endpoint loads the AWS config"),
        };
        let url = url.trim_end_matches('/').to_owned();
        let auth = match (plan.auth, config) {
            (PlannedAuth::Token(source), _) => Auth::Token(read_token(source)?),
            (PlannedAuth::Sigv4, Some(config)) => {
                let credentials = config.credentials_provider().context("the AWS SDK found no credentials provider")?;
                let region =
                    config.region().map(|r| r.as_ref().to_owned()).or_else(|| targets::region_from_url(&url)).context(
                        "no AWS region to sign for: pass --region (or set AWS_REGION or the profile's region)",
                    )?;
                Auth::Sigv4 { credentials, region, profile: plan.profile.clone() }
            }
            (PlannedAuth::Sigv4, None) => unreachable!("signing loads the AWS config"),
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the HTTP client")?;
        Ok(AdminConnection { url, output: self.output, auth, http })
    }
}

impl AdminConnection {
    /// Calls the admin API; answers the status and the raw body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> anyhow::Result<(StatusCode, bytes::Bytes)> {
        let url = format!("{}{path}", self.url);
        let (content_type, payload) = body.unwrap_or(("", Vec::new()));
        let mut request = self.http.request(method, &url);
        if !content_type.is_empty() {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        let mut request = request.body(payload.clone()).build().with_context(|| format!("'{url}' is not a URL"))?;
        match &self.auth {
            Auth::Token(token) => {
                let value = format!("Bearer {token}").parse().context("the admin token is not a valid header value")?;
                request.headers_mut().insert(reqwest::header::AUTHORIZATION, value);
            }
            Auth::Sigv4 { credentials, region, profile } => {
                self.sign(&mut request, &payload, credentials, region, profile.as_deref()).await?
            }
        }
        let response = self.http.execute(request).await.with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        let bytes = response.bytes().await.with_context(|| format!("reading the answer of {url}"))?;
        Ok((status, bytes))
    }

    async fn sign(
        &self,
        request: &mut reqwest::Request,
        payload: &[u8],
        credentials: &SharedCredentialsProvider,
        region: &str,
        profile: Option<&str>,
    ) -> anyhow::Result<()> {
        let from = profile.map_or_else(|| "the AWS SDK's default chain".to_owned(), |p| format!("profile '{p}'"));
        let credentials = credentials
            .provide_credentials()
            .await
            .with_context(|| format!("no AWS credentials from {from} to sign the request with"))?;
        let identity: Identity = credentials.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(SERVICE)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .context("signing parameters")?
            .into();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
            .collect();
        let signable = SignableRequest::new(
            request.method().as_str(),
            request.url().as_str(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(payload),
        )
        .context("the request cannot be signed")?;
        let (instructions, _signature) = sign(signable, &params).context("signing the request")?.into_parts();
        for (name, value) in instructions.headers() {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).context("a signing header")?;
            request.headers_mut().insert(name, value.parse().context("a signing header value")?);
        }
        Ok(())
    }

    /// Calls the admin API with an optional JSON body; a non-2xx answer is an `ApiRefusal`.
    pub async fn send_json(&self, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        let (status, bytes) = self.send(method.clone(), path, body).await?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(self.refusal(&method, path, status, value));
        }
        Ok(value)
    }

    /// GETs `path` (with query) from the admin API as JSON.
    pub async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        self.send_json(Method::GET, path, None).await
    }

    /// Calls the admin API without a body.
    pub async fn request_json(&self, method: Method, path: &str) -> anyhow::Result<Value> {
        self.send_json(method, path, None).await
    }

    /// GETs `path` as text (an HTML page).
    pub async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let (status, bytes) = self.send(Method::GET, path, None).await?;
        if !status.is_success() {
            let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            bail!(self.refusal(&Method::GET, path, status, value));
        }
        String::from_utf8(bytes.to_vec()).context("the answer is not UTF-8 text")
    }

    /// A refusal that says what to do about it: authentication first.
    fn refusal(&self, method: &Method, path: &str, status: StatusCode, body: Value) -> ApiRefusal {
        let said = body["message"].as_str().map(str::to_owned).unwrap_or_else(|| body.to_string());
        let message = match (&self.auth, status) {
            (Auth::Sigv4 { profile, .. }, StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED) => {
                let from = profile
                    .as_deref()
                    .map_or("the environment / default profile".to_owned(), |p| format!("profile '{p}'"));
                format!(
                    "{} refused the signed request ({status}): {said}\n\
                     check the AWS credentials ({from}): the secret key must belong to the access key, \
                     the region must be the stack's, and the identity needs execute-api:Invoke \
                     (attach the stack's OperatorPolicyArn)",
                    self.url
                )
            }
            (Auth::Token(_), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => format!(
                "{} refused the admin token ({status}): {said}\n\
                 use the stack's <data dir>/admin-token, or --auth sigv4 for a deployed stack",
                self.url
            ),
            _ => format!("{method} {path} answered {status}: {said}"),
        };
        ApiRefusal { status, body, message }
    }
}
