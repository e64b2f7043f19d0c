//! `GET /docs`: a browsable reference of `/openapi.json` (Swagger UI). Every asset is served by
//! roster itself, from the `swagger-ui-dist` crate (the UI's files, embedded at build time
//! from the package registry): nothing is fetched from another origin, so the page works on a
//! network without internet. The page's own script is a file too, and a Content-Security-
//! Policy lets the page load nothing but roster's.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

/// Where the UI's own files are served.
const ASSETS: &str = "/docs/assets";

/// Scripts and styles from roster only (Swagger UI sets some styles inline); no frames; no
/// validator badge or anything else from elsewhere.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>roster API reference</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="reference"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/start.js"></script>
</body>
</html>
"#;

/// Starts the UI on roster's document; `validatorUrl: null` keeps it from calling Swagger's
/// public validator.
const START: &str = "window.ui = SwaggerUIBundle({url: '/openapi.json', dom_id: '#reference', \
                     validatorUrl: null, deepLinking: true});\n";

fn with_policy(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The reference's routes (`/docs`, its script, and the UI's files under `/docs/assets`).
pub fn router() -> Router {
    let assets = swagger_ui_dist::generate_routes(swagger_ui_dist::ApiDefinition {
        uri_prefix: ASSETS,
        api_definition: swagger_ui_dist::OpenApiSource::Uri("/openapi.json"),
        title: Some("roster API reference"),
    });
    Router::new()
        .route(
            "/docs",
            get(|| async { with_policy(Html(PAGE).into_response()) }),
        )
        .route(
            "/docs/start.js",
            get(|| async {
                with_policy(
                    (
                        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                        START,
                    )
                        .into_response(),
                )
            }),
        )
        .merge(assets)
}
