//! The native API's extractors: the shared ones of `roster_http::extractors!`, rendering every
//! rejection as an `ApiError`.

roster_http::extractors!(super::error::ApiError);
