//! The native API's extractors: the shared parsers of `crate::extract` and the core's
//! authentication, with every rejection rendered as an `ApiError`.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use roster_core::Actor;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::AppState;
use crate::extract::{Rejection, json_body};

/// A JSON body with every field named in its type (`deny_unknown_fields` on the type).
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let headers = req.headers().clone();
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(Rejection::from)?;
        Ok(Body(json_body(&headers, &bytes, false)?))
    }
}

/// Like `Body`, but a missing body reads as `{}` (every field optional).
pub struct OptionalBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let headers = req.headers().clone();
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(Rejection::from)?;
        Ok(OptionalBody(json_body(&headers, &bytes, true)?))
    }
}

pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(v) = axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(Rejection::from)?;
        Ok(Path(v))
    }
}

pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(v) = axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(Rejection::from)?;
        Ok(Query(v))
    }
}

/// The authenticated caller.
pub struct Auth(pub Actor);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = crate::auth::presented_token(&parts.headers);
        Ok(Auth(
            roster_core::auth::authenticate(state.roster.store(), presented).await?,
        ))
    }
}
