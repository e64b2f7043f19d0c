//! The native API's extractors: the shared ones of `crate::extractors!`, rendering every
//! rejection as an `ApiError`.

crate::extractors!(super::error::ApiError);
